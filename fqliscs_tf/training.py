"""Training and evaluation loops for JSCC codecs, distribution-strategy aware.

The train step draws one SNR per image from a list, sends the batch through the
model's channel and minimises the distortion. It runs inside any
``tf.distribute`` strategy (default, Mirrored, MultiWorkerMirrored).
"""
import math
import time

import numpy as np
import tensorflow as tf
import tf_keras as keras

from .metrics import ms_ssim, psnr, per_image_distortion

__all__ = ["make_strategy", "Trainer", "evaluate", "MS_SSIM_LEVELS"]

# WITT and SwinJSCC score MS-SSIM with 4 scales at every resolution (Kodak and CIFAR).
MS_SSIM_LEVELS = 4


def make_strategy(kind="auto"):
    """A ``tf.distribute`` strategy.

    ``"none"``: the default strategy. ``"mirrored"``: MirroredStrategy over the
    visible devices. ``"multiworker"``: MultiWorkerMirroredStrategy (machines from
    ``TF_CONFIG``). ``"auto"``: multiworker when ``TF_CONFIG`` names several
    workers, mirrored when several devices are visible, else the default.
    """
    import json
    import os
    if kind == "auto":
        cluster = json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {})
        if len(cluster.get("worker", [])) > 1:
            kind = "multiworker"
        elif len(tf.config.list_logical_devices("GPU")) > 1 or \
                len(tf.config.list_logical_devices("CPU")) > 1:
            kind = "mirrored"
        else:
            kind = "none"
    if kind == "none":
        return tf.distribute.get_strategy()
    if kind == "mirrored":
        devices = [d.name for d in tf.config.list_logical_devices("GPU")] or \
                  [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    if kind == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"unknown distribution strategy {kind!r}; "
                     "choose auto, none, mirrored or multiworker")


class _WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up, then cosine decay, of the optimizer's iteration count.

    ``start_step`` shifts the schedule for a run continued from a model folder (the
    optimizer counts from 0 again, the schedule goes on at ``start_step``), and
    ``rewarm_steps`` ramps the rate up linearly over the first iterations of such a run,
    while Adam's fresh moments are estimated.
    """

    def __init__(self, lr, total_steps, warmup_steps, final_ratio, start_step=0,
                 rewarm_steps=0):
        self.lr, self.total, self.warmup, self.final = lr, total_steps, warmup_steps, final_ratio
        self.start, self.rewarm = int(start_step), int(rewarm_steps)

    def __call__(self, iteration):
        iteration = tf.cast(iteration, tf.float32)
        step = iteration + float(self.start)
        warm = tf.minimum(1.0, (step + 1.0) / max(1, self.warmup)) if self.warmup else 1.0
        if self.rewarm:
            warm = warm * tf.minimum(1.0, (iteration + 1.0) / self.rewarm)
        t = tf.clip_by_value((step - self.warmup) / max(1, self.total - self.warmup), 0.0, 1.0)
        cos = self.final + (1 - self.final) * 0.5 * (1 + tf.cos(np.pi * t))
        return self.lr * warm * cos

    def get_config(self):
        return {"lr": self.lr, "total_steps": self.total, "warmup_steps": self.warmup,
                "final_ratio": self.final, "start_step": self.start,
                "rewarm_steps": self.rewarm}


def learning_rate_schedule(lr, kind="constant", total_steps=None, warmup_steps=0,
                           final_lr_ratio=0.05, start_step=0, rewarm_steps=0):
    """A constant rate, or linear warm-up then cosine decay to ``lr * final_lr_ratio``.

    ``start_step``: the schedule's step at the optimizer's iteration 0 (a continued run);
    ``rewarm_steps``: linear ramp over the first iterations of such a run (0 = none).
    """
    if lr <= 0:
        raise ValueError(f"learning rate must be positive, got {lr}")
    if start_step < 0 or rewarm_steps < 0:
        raise ValueError(f"start_step and rewarm_steps must be >= 0, got {start_step} and "
                         f"{rewarm_steps}")
    if kind == "constant":
        if not warmup_steps and not rewarm_steps:
            return lr
        return _WarmupCosine(lr, 10 ** 12, warmup_steps, 1.0, start_step, rewarm_steps)
    if kind == "cosine":
        if not total_steps:
            raise ValueError("the cosine schedule needs total_steps")
        return _WarmupCosine(lr, int(total_steps), int(warmup_steps), float(final_lr_ratio),
                             start_step, rewarm_steps)
    raise ValueError(f"unknown learning-rate schedule {kind!r}; choose constant or cosine")


class Trainer:
    """Owns the optimizer, the step counter and the compiled train step.

    Build it (and the model) inside ``strategy.scope()``.

    Parameters
    ----------
    model : JSCC
    snr_list : list of float
        SNRs [dB]; each training image gets one drawn uniformly from it.
    metric : "MSE" or "MS-SSIM"
    lr : float
        Adam learning rate.
    global_batch_size : int
    seed : int
        Seed of the SNR draws (stateless: reproducible and resumable).
    jit_compile : bool
        Compile the train step with XLA.
    total_steps : int or None
        With ``lr_schedule="cosine"``: the step at which the rate reaches ``lr * final_lr_ratio``.
    lr_schedule : "constant" or "cosine"
    warmup_steps : int
        Linear warm-up from 0 to ``lr``.
    start_step : int
        Continue a trained model: the step counter (SNR draws, schedule, ``--time-budget``)
        starts here, the optimizer's moments start fresh.
    rewarm_steps : int
        With ``start_step``: linear learning-rate ramp over the first steps of this run.
    """

    def __init__(self, model, snr_list, metric="MSE", lr=1e-4, global_batch_size=1, seed=0,
                 jit_compile=True, strategy=None, total_steps=None, lr_schedule="constant",
                 warmup_steps=0, final_lr_ratio=0.05, start_step=0, rewarm_steps=0):
        self.model = model
        self.strategy = strategy or tf.distribute.get_strategy()
        self.snr_list = tf.constant(snr_list, tf.float32)
        self.metric = metric
        self.global_batch_size = int(global_batch_size)
        self.seed = int(seed)
        self.optimizer = keras.optimizers.Adam(
            learning_rate_schedule(lr, lr_schedule, total_steps, warmup_steps, final_lr_ratio,
                                   start_step, rewarm_steps))
        self.step = tf.Variable(int(start_step), dtype=tf.int64, trainable=False, name="step")
        # Wall-clock seconds spent in train steps over all sittings (for --time-budget).
        self.train_seconds = tf.Variable(0.0, dtype=tf.float64, trainable=False,
                                         name="train_seconds")
        self._step_fn = tf.function(self._replica_step, jit_compile=jit_compile)
        self.jit_compile = jit_compile

    def _draw_snr(self, batch, step):
        ctx = tf.distribute.get_replica_context()
        replica = tf.cast(ctx.replica_id_in_sync_group if ctx else 0, tf.int64)
        seed = tf.stack([tf.constant(self.seed, tf.int64), step * 1024 + replica])
        idx = tf.random.stateless_uniform([batch], seed, 0, tf.shape(self.snr_list)[0],
                                          dtype=tf.int32)
        return tf.gather(self.snr_list, idx)

    def _replica_step(self, images, step):
        # ``step`` comes in as a tensor: reading the step variable inside an XLA
        # replica function fails on multi-device CPU setups.
        snr_db = self._draw_snr(tf.shape(images)[0], step)
        with tf.GradientTape() as tape:
            out = self.model((images, snr_db), training=True)
            # Unclipped, so that pixels outside [0, 1] still get a gradient.
            per_image = per_image_distortion(images, out["x_hat"], self.metric, clip=False)
            loss = tf.nn.compute_average_loss(per_image, global_batch_size=self.global_batch_size)
        grads = tape.gradient(loss, self.model.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.model.trainable_variables))
        batch_psnr = tf.nn.compute_average_loss(psnr(images, out["x_hat"]),
                                                global_batch_size=self.global_batch_size)
        return loss, batch_psnr

    @tf.function
    def _distributed_step(self, images):
        loss, batch_psnr = self.strategy.run(self._step_fn, args=(images, self.step.read_value()))
        self.step.assign_add(1)
        reduce = tf.distribute.ReduceOp.SUM
        return (self.strategy.reduce(reduce, loss, axis=None),
                self.strategy.reduce(reduce, batch_psnr, axis=None))

    @property
    def current_step(self):
        """Optimisation steps taken so far (int)."""
        return int(self.step.numpy())

    def train_step(self, images):
        """One optimisation step on a (distributed) batch. Returns (loss, mean PSNR [dB])."""
        return self._distributed_step(images)

    def checkpoint(self):
        return tf.train.Checkpoint(model=self.model, optimizer=self.optimizer, step=self.step,
                                   train_seconds=self.train_seconds)


def evaluate(model, images, snr_list, progress=None):
    """PSNR and MS-SSIM of ``model`` on each image at each SNR, averaged over images.

    Parameters
    ----------
    model : JSCCModel
    images : iterable of float32 ``[1, H, W, 3]`` tensors in [0, 1], or of ``(image, name)``
        or ``(image, name, size)`` tuples; with ``size = (height, width)`` (a padded test
        image, ``data.test_dataset(..., fit="pad", return_size=True)``) the image and its
        reconstruction are centre-cropped back to ``size`` before scoring.
    snr_list : list of float [dB]
    progress : callable or None, called with each image's index

    Returns
    -------
    list of dict ``{"snr_db", "psnr", "ms_ssim", "num_images", "psnr_per_image"}``,
    one per SNR, and the elapsed seconds.
    """
    from .data import crop_to_size
    snrs = tf.constant(snr_list, tf.float32)
    k = len(snr_list)

    # One trace per image size (Kodak has two); MS-SSIM picks its window from the static size.
    @tf.function
    def reconstruct(image):
        batch = tf.repeat(image, k, axis=0)
        return batch, tf.clip_by_value(model((batch, snrs), training=False)["x_hat"], 0.0, 1.0)

    @tf.function
    def score(x, x_hat):
        return psnr(x, x_hat), ms_ssim(x, x_hat, levels=MS_SSIM_LEVELS)

    start = time.time()
    p_all, s_all = [], []
    for i, item in enumerate(images):
        image = item[0] if isinstance(item, (tuple, list)) else item
        x, x_hat = reconstruct(image)
        if isinstance(item, (tuple, list)) and len(item) == 3:
            x, x_hat = crop_to_size(x, item[2]), crop_to_size(x_hat, item[2])
        p, s = score(x, x_hat)
        p_all.append(p.numpy())
        s_all.append(s.numpy())
        if progress:
            progress(i)
    if not p_all:
        raise ValueError("evaluation got no images")
    p_all, s_all = np.stack(p_all), np.stack(s_all)  # [num_images, k]
    records = []
    for j, snr in enumerate(snr_list):
        records.append({"snr_db": float(snr), "psnr": float(np.mean(p_all[:, j])),
                        "ms_ssim": float(np.mean(s_all[:, j])), "num_images": int(len(p_all)),
                        "psnr_per_image": [float(v) for v in p_all[:, j]]})
    return records, time.time() - start


def steps_per_epoch(num_images, batch_size):
    return max(1, math.ceil(num_images / batch_size))

"""fqliscs_tf: fully quantized lightweight image semantic communication in TensorFlow and Sionna."""
__version__ = "0.1.0"

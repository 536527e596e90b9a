"""cti: a CTI server that drives Asterisk for TV-advertising call centers."""

__version__ = "0.1.0"

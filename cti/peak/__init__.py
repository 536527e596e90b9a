"""TV-ad peak mode (R-PEAK): when the center is in peak, why, and what follows from it."""

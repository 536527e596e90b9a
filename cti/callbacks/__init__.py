"""The callback queue: nobody who calls is lost (R-PEAK, R-NIGHT)."""

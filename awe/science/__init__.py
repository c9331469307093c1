"""Pure science functions over arrays: numpy, scipy and astropy only, nothing else of AWE."""

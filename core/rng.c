/* core/rng.c — to be written. */

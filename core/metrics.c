/* core/metrics.c — to be written. */

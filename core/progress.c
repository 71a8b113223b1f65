/* core/progress.c — to be written. */

/* core/h5.c — to be written. */

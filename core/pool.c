/* core/pool.c — to be written. */

/* core/kv.c — to be written. */

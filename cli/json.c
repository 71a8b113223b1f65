/* cli/json.c — to be written. */

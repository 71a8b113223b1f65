/* cli/cmd_quantize.c — to be written. */

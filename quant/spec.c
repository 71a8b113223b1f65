/* quant/spec.c — to be written. */

/* quant/uniform.c — to be written. */

/* quant/histogram.c — to be written. */

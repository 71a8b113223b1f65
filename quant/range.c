/* quant/range.c — to be written. */

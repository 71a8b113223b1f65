/* quant/round.c — to be written. */

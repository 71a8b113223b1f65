# top1-vs-acc.gp — written by quasar; draws top1-vs-acc.png from top1-vs-acc.dat.
# Run it in this folder (gnuplot top1-vs-acc.gp) to redraw the figure after editing.
# kind: line
if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {
    set terminal pngcairo size 1000,700 noenhanced font 'sans,11'
} else {
    set terminal png size 1000,700 noenhanced
}
set output 'top1-vs-acc.png'
set title 'fmnist-dwsep W8A8, integer engine: top-1 against accumulator (wrap-around)'
set xlabel 'acc'
set ylabel 'top1 [fraction]'
set grid
set key below
set format x '%g'
set format y '%g'
set xtics ('int12' 0, 'int14' 1, 'int16' 2, 'int18' 3, 'int20' 4, 'int24' 5, 'int32' 6)
plot 'top1-vs-acc.dat' index 0 using 1:2 with linespoints pt 7 lw 2 lt 1 title 'top1'
unset output

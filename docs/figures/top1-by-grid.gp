# top1-by-grid.gp — written by quasar; draws top1-by-grid.png from top1-by-grid.dat.
# Run it in this folder (gnuplot top1-by-grid.gp) to redraw the figure after editing.
# kind: bars
if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {
    set terminal pngcairo size 1000,700 noenhanced font 'sans,11'
} else {
    set terminal png size 1000,700 noenhanced
}
set output 'top1-by-grid.png'
set title 'fmnist-dwsep: top-1 by weight grid (int8 or fp8-e4m3 activations)'
set xlabel 'w_grid'
set ylabel 'top1 [fraction]'
set grid
set key below
set format x '%g'
set format y '%g'
set xtics ('uniform' 0, 'ls-1' 1, 'ls-2' 2, 'ls-t' 3, 'gf-2' 4, 'gf-3' 5, 'pot-4' 6, 'apot-4' 7, 'kmeans-4' 8, 'fp8-e4m3' 9, 'fp6-e3m2' 10, 'fp4-e2m1' 11, 'mxfp4' 12)
set yrange [0:*]
set xrange [-0.6:12.6]
set style fill solid 0.85 border -1
set boxwidth 0.4 absolute
set grid noxtics ytics
plot 'top1-by-grid.dat' index 0 using ($1 + -0.2):2 with boxes lt 1 title 'a_grid=uniform', \
     'top1-by-grid.dat' index 1 using ($1 + 0.2):2 with boxes lt 2 title 'a_grid=fp8-e4m3'
unset output

# heatmap-wbits-abits.gp — written by quasar; draws heatmap-wbits-abits.png from heatmap-wbits-abits.dat.
# Run it in this folder (gnuplot heatmap-wbits-abits.gp) to redraw the figure after editing.
# kind: heatmap
if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {
    set terminal pngcairo size 1000,700 noenhanced font 'sans,11'
} else {
    set terminal png size 1000,700 noenhanced
}
set output 'heatmap-wbits-abits.png'
set title 'fmnist-dwsep, per-channel MSE weights: top-1 over weight and activation bits'
set xlabel 'w_bits'
set ylabel 'a_bits'
set grid
set key below
set format x '%g'
set format y '%g'
set xtics ('2' 0, '3' 1, '4' 2, '6' 3, '8' 4)
set ytics ('4' 0, '8' 1)
set xrange [-0.5:4.5]
set yrange [-0.5:1.5]
unset grid
unset key
set cblabel 'top1 [fraction]'
set palette defined (0 '#440154', 1 '#3b528b', 2 '#21918c', 3 '#5ec962', 4 '#fde725')
plot 'heatmap-wbits-abits.dat' index 0 using 1:2:3 with image notitle, \
     '' index 0 using 1:2:($3 == $3 ? sprintf('%.3g', $3) : '') with labels notitle
unset output

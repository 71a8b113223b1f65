# pareto-top1-energy.gp — written by quasar; draws pareto-top1-energy.png from pareto-top1-energy.dat.
# Run it in this folder (gnuplot pareto-top1-energy.gp) to redraw the figure after editing.
# kind: pareto
if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {
    set terminal pngcairo size 1000,700 noenhanced font 'sans,11'
} else {
    set terminal png size 1000,700 noenhanced
}
set output 'pareto-top1-energy.png'
set title 'fmnist-dwsep: top-1 against energy per inference, per target'
set xlabel 'energy_j [J]'
set ylabel 'top1 [fraction]'
set grid
set key below
set format x '%g'
set format y '%g'
set logscale x
plot 'pareto-top1-energy.dat' index 0 every :::1::1 using 1:2 with points pt 7 ps 1.2 lt 1 title 'target=asic-45nm', \
     '' index 0 every :::0::0 using 1:2 with linespoints pt 7 ps 0.6 lw 2 lt 1 notitle, \
     'pareto-top1-energy.dat' index 1 every :::1::1 using 1:2 with points pt 7 ps 1.2 lt 2 title 'target=bitfusion', \
     '' index 1 every :::0::0 using 1:2 with linespoints pt 7 ps 0.6 lw 2 lt 2 notitle, \
     'pareto-top1-energy.dat' index 2 every :::1::1 using 1:2 with points pt 7 ps 1.2 lt 3 title 'target=cpu-avx512-vnni', \
     '' index 2 every :::0::0 using 1:2 with linespoints pt 7 ps 0.6 lw 2 lt 3 notitle, \
     'pareto-top1-energy.dat' index 3 every :::1::1 using 1:2 with points pt 7 ps 1.2 lt 4 title 'target=dsp-hvx', \
     '' index 3 every :::0::0 using 1:2 with linespoints pt 7 ps 0.6 lw 2 lt 4 notitle
unset output

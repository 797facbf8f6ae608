# scaling: claims C5 and G5, from `polyrope sweep scaling --out F.csv`: wall time of the forward
# and backward passes against n for each algorithm, with the cost model of each drawn through
# the measurements (one constant per algorithm, fitted as Σ time / Σ model).
# Run by `polyrope plot F.csv`, or: gnuplot -e "csv='F.csv'; out='F'; algo_values='dense fft'; combos='dense:general fft:general'" scaling.gp
# series: algo pos
set datafile separator comma
set datafile columnheaders
set datafile missing NaN
sel(a, p) = (strcol("algo") eq a && strcol("pos") eq p && strcol("status") eq "ok")
# one series per algo:pos combination present (polyrope plot passes combos)
nc = words(combos)
cut = 0
an(i) = (cut = strstrt(word(combos, i), ":"), word(combos, i)[1:cut-1])
pn(i) = (cut = strstrt(word(combos, i), ":"), word(combos, i)[cut+1:])
# the fitted constants, one per series and pass
cf = ""
cb = ""
do for [i=1:nc] {
  stats csv using (sel(an(i), pn(i)) ? column("time_s") : 0) name "TF" nooutput
  stats csv using (sel(an(i), pn(i)) ? column("back_time_s") : 0) name "TB" nooutput
  stats csv using (sel(an(i), pn(i)) ? column("model") : 0) name "MM" nooutput
  cf = cf.sprintf(" %.6e", TF_sum / MM_sum)
  cb = cb.sprintf(" %.6e", TB_sum / MM_sum)
}
model(a) = (a eq "dense" ? "n^2 s" : a eq "fft" ? "C(s+g,g)(d+1) n log n" : "C(d+g,g)(d+1) n")
do for [t in "png pdf"] {
  if (t eq "png") { set terminal pngcairo size 1200,560 enhanced font ",10" } \
  else { set terminal pdfcairo size 12in,5.6in enhanced font ",10" }
  set output out.".".t
  set multiplot layout 1,2 title "Time against n: measurements (points) and cost models (dashed, one fitted constant each)"
  set logscale xy 10
  set logscale x 2
  set format y "10^{%L}"
  set grid
  set key top left box opaque samplen 2 spacing 0.9
  # headroom above the data for the legend
  set offsets 0, 0, graph 0.7, 0
  set xlabel "sequence length n (tokens)"
  do for [pass=1:2] {
    col = pass == 1 ? "time_s" : "back_time_s"
    cs = pass == 1 ? cf : cb
    set ylabel (pass == 1 ? "forward wall time (s)" : "backward wall time (s)")
    set title (pass == 1 ? "C5: forward pass" : "G5: backward pass")
    plot for [i=1:nc] csv using "n":(sel(an(i), pn(i)) ? column(col) : NaN) \
           with linespoints pt 7 ps 0.9 lc i title sprintf("%s, %s W", an(i), pn(i)), \
         for [i=1:nc] csv using "n":(sel(an(i), pn(i)) ? word(cs, i) * column("model") : NaN) \
           with lines lw 1.5 dt 2 lc i title sprintf("%.2g x %s", word(cs, i) + 0, model(an(i)))
  }
  unset multiplot
  set output
}

# error: claims C9 and G4, from `polyrope sweep error --out F.csv`: the observed error of the
# fast paths (against the dense exact result) against the guarantee, output and gradients.
# Run by `polyrope plot F.csv`, or: gnuplot -e "csv='F.csv'; out='F'; combos='fft:rope lowrank:rope fft:general'" error.gp
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
do for [t in "png pdf"] {
  if (t eq "png") { set terminal pngcairo size 1200,500 enhanced font ",10" } \
  else { set terminal pdfcairo size 12in,5in enhanced font ",10" }
  set output out.".".t
  set multiplot layout 1,2 title "Observed error of the fast paths against their guarantees (points below the diagonal hold)"
  set logscale xy 10
  set format xy "10^{%L}"
  set grid
  set key top left box opaque
  set xlabel "guarantee 2ε_A/(1-ε_A)·‖V‖_∞ + floor   (output units)"
  set ylabel "observed max |Õ - O|   (output units)"
  set title "C9: output error"
  plot for [i=1:nc] csv using "bound":(sel(an(i), pn(i)) ? column("err_inf") : NaN) \
         with points pt 7 ps 0.9 title sprintf("%s on %s W", an(i), pn(i)), \
       x with lines lw 1.5 dt 2 lc "black" title "observed = guarantee"
  set xlabel "propagated bound for eps   (gradient units)"
  set ylabel "observed max |fast gradient - exact gradient|"
  set title "G4: gradient error (dQ filled, dK open, dV crosses)"
  plot for [i=1:nc] csv using "dq_bound":(sel(an(i), pn(i)) ? column("dq_err") : NaN) \
         with points pt 7 ps 0.9 lc i title sprintf("%s on %s W", an(i), pn(i)), \
       for [i=1:nc] csv using "dk_bound":(sel(an(i), pn(i)) ? column("dk_err") : NaN) \
         with points pt 6 ps 0.9 lc i notitle, \
       for [i=1:nc] csv using "dv_bound":(sel(an(i), pn(i)) ? column("dv_err") : NaN) \
         with points pt 2 ps 0.9 lc i notitle, \
       x with lines lw 1.5 dt 2 lc "black" title "observed = bound"
  unset multiplot
  set output
}

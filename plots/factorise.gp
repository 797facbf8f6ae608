# factorise: claims C11 (RoPE scores factorise) and C6 (max |M| <= R), from
#   polyrope sweep factorise --out F.csv
# Run by `polyrope plot F.csv`, or: gnuplot -e "csv='F.csv'; out='F'; d_values='2 4'" factorise.gp
# series: d B
set datafile separator comma
set datafile columnheaders
set datafile missing NaN
# the rows of one series; NaN elsewhere, which "missing NaN" makes gnuplot skip without
# breaking lines
dmax = word(d_values, words(d_values))
sel(dv, p) = (strcol("d") eq dv && strcol("pos") eq p)
do for [t in "png pdf"] {
  if (t eq "png") { set terminal pngcairo size 1200,500 enhanced font ",10" } \
  else { set terminal pdfcairo size 12in,5in enhanced font ",10" }
  set output out.".".t
  set multiplot layout 1,2 title "Claims C11 and C6 (σ = 1/d, Q, K uniform in [-B, B])"
  set logscale xy 2
  set format y "10^{%L}"
  set logscale y 10
  set grid
  set key top left box opaque
  set xlabel "sequence length n (tokens)"
  set ylabel "max_{ij} |M via W_{i-j} - M via (R_iQ_i)(R_jK_j)|   (score units)"
  set title "C11: RoPE factorises; measured error and its rounding bound"
  plot for [dv in d_values] csv using "n":(sel(dv, "rope") ? column("err") : NaN) \
         with points pt 7 ps 0.8 title sprintf("rope, d = %s", dv), \
       for [dv in d_values] csv using "n":(sel(dv, "rope-neox") ? column("err") : NaN) \
         with points pt 6 ps 1.2 title sprintf("rope-neox, d = %s", dv), \
       for [bv in B_values] csv using "n":(sel(dmax, "rope") && strcol("B") eq bv ? column("bound") : NaN) \
         with lines lw 1.5 dt 2 title sprintf("bound σB^2d·u(24n+8d+40), B = %s, d = %s", bv, dmax)
  unset logscale
  set logscale xy 10
  set format y "%g"
  set xlabel "R = σ·max|Q|·max|K|·max_l Σ|w(l)|   (score units)"
  set ylabel "max_{ij} |M_{ij}|   (score units)"
  set title "C6: the exponent stays in [-R, R]"
  plot csv using "R":(strcol("pos") eq "rope" ? column("max_abs_M") : NaN) with points pt 7 ps 0.8 title "rope", \
       csv using "R":(strcol("pos") eq "rope-neox" ? column("max_abs_M") : NaN) with points pt 6 ps 1.2 title "rope-neox", \
       csv using "R":(strcol("pos") eq "general" ? column("max_abs_M") : NaN) with points pt 5 ps 0.6 title "general W", \
       x with lines lw 1.5 dt 2 title "theory: max |M| = R"
  unset multiplot
  set output
}

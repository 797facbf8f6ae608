# rope-vs-general: claim C12, from `polyrope sweep rope-vs-general --out F.csv`: on factorised
# RoPE, the low-rank path's C(d+g,g) features against the FFT path's C(2d+g,g) Toeplitz terms
# (theory curves through lgamma), and the wall time of both paths.
# Run by `polyrope plot F.csv`, or: gnuplot -e "csv='F.csv'; out='F'; d_values='2 4'" rope-vs-general.gp
# series: d
set datafile separator comma
set datafile columnheaders
set datafile missing NaN
sel(dv) = (strcol("d") eq dv && strcol("status") eq "ok")
binom(m, k) = exp(lgamma(m + k + 1) - lgamma(m + 1) - lgamma(k + 1))
nd = words(d_values)
do for [t in "png pdf"] {
  if (t eq "png") { set terminal pngcairo size 1200,500 enhanced font ",10" } \
  else { set terminal pdfcairo size 12in,5in enhanced font ",10" }
  set output out.".".t
  set multiplot layout 1,2 title "Factorised RoPE: low-rank features against Toeplitz terms"
  set grid
  set key top left box opaque
  set logscale y 10
  set format y "10^{%L}"
  set xlabel "polynomial degree g"
  set ylabel "count"
  set title "C12: features C(d+g,g) (filled) and terms C(2d+g,g) (open)"
  set xrange [0:*]
  set samples 200
  plot for [i=1:nd] csv using "degree_lowrank":(sel(word(d_values, i)) ? column("features") : NaN) \
         with points pt 7 ps 1.2 lc i title sprintf("low-rank features, d = %s", word(d_values, i)), \
       for [i=1:nd] csv using "degree_fft":(sel(word(d_values, i)) ? column("terms") : NaN) \
         with points pt 6 ps 1.5 lc i title sprintf("FFT terms, d = %s", word(d_values, i)), \
       for [i=1:nd] binom(word(d_values, i) + 0, x) with lines dt 2 lc i notitle, \
       for [i=1:nd] binom(2 * word(d_values, i), x) with lines dt 3 lc i notitle
  set autoscale x
  set logscale x 2
  set xlabel "sequence length n (tokens)"
  set ylabel "forward wall time (s)"
  set title "time of the two paths on the same RoPE problem"
  plot for [i=1:nd] csv using "n":(sel(word(d_values, i)) ? column("lowrank_time_s") : NaN) \
         with points pt 7 lc i title sprintf("low-rank, d = %s", word(d_values, i)), \
       for [i=1:nd] csv using "n":(sel(word(d_values, i)) ? column("fft_time_s") : NaN) \
         with points pt 6 lc i title sprintf("FFT, d = %s", word(d_values, i))
  unset multiplot
  set output
}

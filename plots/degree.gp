# degree: claims C7 and C8, from `polyrope sweep degree --out F.csv`: the certified least degree (of the
# poly column's construction) for e^x on [0, L] and e^{-x} on [0, L] to additive error eps, against the
# Aggarwal-Alman value (the column aa) times a constant fitted by least squares.
# Run by `polyrope plot F.csv`, or: gnuplot -e "csv='F.csv'; out='F'; eps_values='0.01 0.0001'" degree.gp
# series: eps poly
set datafile separator comma
set datafile columnheaders
set datafile missing NaN
sel(f, e) = (strcol("fn") eq f && strcol("eps") eq e)
# least-squares constant c of degree ≈ c·aa over the certified rows of one function
ok(f) = (strcol("fn") eq f && column("certified") == 1)
stats csv using (ok("exp-abs") ? column("degree") * column("aa") : 0) name "GA1" nooutput
stats csv using (ok("exp-abs") ? column("aa")**2 : 0) name "AA1" nooutput
stats csv using (ok("expneg-abs") ? column("degree") * column("aa") : 0) name "GA2" nooutput
stats csv using (ok("expneg-abs") ? column("aa")**2 : 0) name "AA2" nooutput
c1 = AA1_sum > 0 ? GA1_sum / AA1_sum : NaN
c2 = AA2_sum > 0 ? GA2_sum / AA2_sum : NaN
fns = "exp-abs expneg-abs"
cs = sprintf("%g %g", c1, c2)
aatext1 = "AA = max(L, ln(1/eps) / ln(ln(1/eps)/L))"
aatext2 = "AA = max(sqrt(L ln(1/eps)), ln(1/eps) / ln(ln(1/eps)/L))"
ne = words(eps_values)
do for [t in "png pdf"] {
  if (t eq "png") { set terminal pngcairo size 1200,550 enhanced font ",10" } \
  else { set terminal pdfcairo size 12in,5.5in enhanced font ",10" }
  set output out.".".t
  set multiplot layout 1,2 title "Certified least degree of the construction (Chebyshev: of that interpolation; minimax: of any polynomial) against Aggarwal-Alman"
  set logscale xy 2
  set grid
  set key top left Left reverse samplen 2
  set xlabel "interval length L = R (dimensionless)"
  set ylabel "polynomial degree g"
  do for [k=1:2] {
    f = word(fns, k)
    c = word(cs, k) + 0
    if (k == 1) { set title "C7: e^x on [0, L] to additive error eps\n".aatext1 noenhanced } \
    else { set title "C8: e^{-x} on [0, L] to additive error eps\n".aatext2 noenhanced }
    plot for [i=1:ne] csv using "R":(sel(f, word(eps_values, i)) ? column("degree") : NaN) \
           with points pt 7 ps 1 lc i title sprintf("certified g, eps = %s", word(eps_values, i)), \
         for [i=1:ne] csv using "R":(sel(f, word(eps_values, i)) ? c * column("aa") : NaN) \
           with lines lw 1.5 dt 2 lc i title (i == 1 ? sprintf("fitted %.2f x AA (one line per eps)", c) : "")
  }
  unset multiplot
  set output
}

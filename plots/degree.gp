# degree: claims C7 and C8, from `polyrope sweep degree --out F.csv`: the certified least degree (of the
# poly column's construction) for e^x on [0, L] and e^{-x} on [0, L] to additive error eps, against the
# Aggarwal-Alman value (the column aa) times a constant fitted by least squares.
# Run by `polyrope plot F.csv`, or: gnuplot -e "csv='F.csv'; out='F'; eps_values='0.01 0.0001'; poly_values='chebyshev'" degree.gp
# series: eps poly
load ARG0[1:strlen(ARG0) - strlen("degree.gp")]."style.gp"
sel(f, e, p) = (strcol("fn") eq f && strcol("eps") eq e && strcol("poly") eq p && strcol("status") eq "ok")
# least-squares constant c of degree ≈ c·aa over the certified rows of one function
ok(f) = (strcol("fn") eq f && strcol("status") eq "ok" && column("certified") == 1)
eval stats_begin
stats csv using (ok("exp-abs") ? fin(column("degree") * column("aa")) : 0) name "GA1" nooutput
stats csv using (ok("exp-abs") ? fin(column("aa")**2) : 0) name "AA1" nooutput
stats csv using (ok("expneg-abs") ? fin(column("degree") * column("aa")) : 0) name "GA2" nooutput
stats csv using (ok("expneg-abs") ? fin(column("aa")**2) : 0) name "AA2" nooutput
eval stats_end
c1 = AA1_sum > 0 ? GA1_sum / AA1_sum : NaN
c2 = AA2_sum > 0 ? GA2_sum / AA2_sum : NaN
fns = "exp-abs expneg-abs"
cs = sprintf("%g %g", c1, c2)
aa1 = "max(L, ln(1/ε) / ln(ln(1/ε)/L))"
aa2 = "max(√(L ln(1/ε)), ln(1/ε) / ln(ln(1/ε)/L))"
ne = words(eps_values)
npo = words(poly_values)
# construction by marker: Chebyshev filled circle, minimax filled square, Taylor triangle
poly_pt(p) = p eq "chebyshev" ? 7 : p eq "minimax" ? 5 : 9
poly_name(p) = p eq "chebyshev" ? "Chebyshev" : p eq "minimax" ? "minimax" : p eq "taylor" ? "Taylor" : p
K = ne * npo + 2
do for [t in "png pdf"] {
  eval fig_term(t, 2, 1.8, K)
  set output out.".".t
  eval fig_multi(t, 2, 1.8, K)
  set logscale xy 2
  set format xy "%g"
  eval fig_axes
  set xlabel "interval length L = R" offset 0, 0.3
  set ylabel "certified least degree g"
  do for [k=1:2] {
    f = word(fns, k)
    c = word(cs, k) + 0
    set title (k == 1 ? "C7: e^x on [0, L] to additive error ε" : "C8: e^{-x} on [0, L] to additive error ε")
    if (k == 2) { eval fig_key(t, 2, 1.8, K) } else { unset key }
    plot for [i=1:ne] for [p in poly_values] csv using (sel(f, word(eps_values, i), p) ? column("R") : NaN):(column("degree")) \
           with points pt poly_pt(p) lc rgb ser_rgb(i) title sprintf("%s, ε = %s", poly_name(p), word(eps_values, i)), \
         for [i=1:ne] csv using (sel(f, word(eps_values, i), word(poly_values, 1)) ? column("R") : NaN):(c * column("aa")) \
           with lines lw 1 dt 2 lc rgb ser_rgb(i) notitle, \
         for [j=1:2] keyentry with lines lw 1 dt 2 lc rgb "#000000" \
           title sprintf("%s %.2f·%s", j == 1 ? "C7 fit:" : "C8 fit:", word(cs, j) + 0, j == 1 ? aa1 : aa2)
  }
  unset multiplot
  set output
}

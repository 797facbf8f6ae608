# factorise: claims C11 (RoPE scores factorise) and C6 (max |M| <= R), from
#   polyrope sweep factorise --out F.csv
# Run by `polyrope plot F.csv`, or: gnuplot -e "csv='F.csv'; out='F'; d_values='2 4'; B_values='1 2'; pos_values='rope general'" factorise.gp
# series: d B pos
load ARG0[1:strlen(ARG0) - strlen("factorise.gp")]."style.gp"
sel(dv, p) = (strcol("d") eq dv && strcol("pos") eq p && strcol("status") eq "ok")
nd = words(d_values)
nb = words(B_values)
np = words(pos_values)
dmax = word(d_values, nd)
# one legend for both panels: colour by d, marker by W (RoPE filled, RoPE-NeoX open, general square)
pos_pt(p) = p eq "rope" ? 7 : p eq "rope-neox" ? 6 : 5
pos_name(p) = p eq "rope" ? "RoPE" : p eq "rope-neox" ? "RoPE-NeoX" : p eq "general" ? "general W" : p
# one column: the formulas are long
K = nd * np + nb + 1
do for [t in "png pdf"] {
  eval fig_term(t, 2, 1.8, K)
  set output out.".".t
  eval fig_multi(t, 2, 1.8, K)
  set logscale x 2
  set format x "2^{%L}"
  set logscale y 10
  set format y "10^{%L}"
  eval fig_axes
  set xlabel "sequence length n (tokens)" offset 0, 0.3
  set ylabel "max_{ij} |M via W_{j-i} - M via R_iQ_i, R_jK_j|"
  set title "C11: RoPE factorises (σ = 1/d, Q, K in [-B, B])"
  unset key
  plot for [i=1:nd] for [p in "rope rope-neox"] csv using (sel(word(d_values, i), p) ? column("n") : NaN):(column("err")) \
         with points pt pos_pt(p) lc rgb ser_rgb(i) notitle, \
       for [j=1:nb] csv using (sel(dmax, "rope") && strcol("B") eq word(B_values, j) ? column("n") : NaN):(column("bound")) \
         with lines lw 1.2 dt j + 2 lc rgb "#000000" notitle
  set logscale xy 2
  set format xy "%g"
  # a tick at every power of 2 (autofreq skips them on a short log range)
  set xtics 1.0/1024, 2
  set ytics 1.0/1024, 2
  set xlabel "R = σ·max|Q|·max|K|·max_ℓ Σ|w(ℓ)|"
  set ylabel "max_{ij} |M_{ij}|"
  set title "C6: the exponent stays in [-R, R]"
  eval fig_key(t, 2, 1.8, K)
  plot for [i=1:nd] for [p in pos_values] csv using (sel(word(d_values, i), p) ? column("R") : NaN):(column("max_abs_M")) \
         with points pt pos_pt(p) lc rgb ser_rgb(i) title sprintf("%s, d = %s", pos_name(p), word(d_values, i)), \
       x with lines @theory title "C6: max|M| = R (y = x)", \
       for [j=1:nb] keyentry with lines lw 1.2 dt j + 2 lc rgb "#000000" \
         title sprintf("C11: σB^2d·u·(24n+8d+40), B = %s, d = %s", word(B_values, j), dmax)
  unset multiplot
  set output
}

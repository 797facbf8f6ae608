# error: claims C9 and G4, from `polyrope sweep error --out F.csv`: the observed error of the
# fast paths (against the dense exact result) against the guarantee, output and gradients.
# Run by `polyrope plot F.csv`, or: gnuplot -e "csv='F.csv'; out='F'; combos='fft:rope lowrank:rope fft:general'" error.gp
# series: algo pos
load ARG0[1:strlen(ARG0) - strlen("error.gp")]."style.gp"
sel(a, p) = (strcol("algo") eq a && strcol("pos") eq p && strcol("status") eq "ok")
eval stats_begin
# the series with a measured error (low-rank on general W has none)
cs = ""
do for [w in combos] {
  stats csv using (sel(an(w), pn(w)) ? isfin(column("err_inf")) : 0) name "NE" nooutput
  if (NE_sum > 0) { cs = cs." ".w }
}
eval stats_end
nc = words(cs)
ser(i) = word(cs, i)
# W within an algorithm: RoPE dark, RoPE-NeoX middle, general W light
pk(p) = p eq "general" ? 3 : p eq "rope-neox" ? 2 : 1
K = int((nc + 2) / 2)
do for [t in "png pdf"] {
  eval fig_term(t, 2, 1.8, K)
  set output out.".".t
  eval fig_multi(t, 2, 1.8, K)
  set logscale xy 10
  set format xy "10^{%L}"
  eval fig_axes
  set xlabel "guarantee 2ε_A/(1-ε_A)·‖V‖_∞ + floor" offset 0, 0.3
  set ylabel "observed max |Õ - O|"
  set title "C9: output error (below the diagonal: held)"
  unset key
  plot for [i=1:nc] csv using (sel(an(ser(i)), pn(ser(i))) ? column("bound") : NaN):(column("err_inf")) \
         with points pt algo_pt(an(ser(i))) lc rgb algo_shade(an(ser(i)), pk(pn(ser(i))), 3) notitle, \
       x with lines @theory notitle
  set xlabel "propagated bound for ε (dQ, dK, dV pooled)"
  set ylabel "observed max |fast - exact gradient|"
  set title "G4: gradient error (below the diagonal: held)"
  eval fig_key(t, 2, 1.8, K)
  plot for [i=1:nc] csv using (sel(an(ser(i)), pn(ser(i))) ? column("dq_bound") : NaN):(column("dq_err")) \
         with points pt algo_pt(an(ser(i))) lc rgb algo_shade(an(ser(i)), pk(pn(ser(i))), 3) \
         title sprintf("%s on %s W", algo_name(an(ser(i))), pn(ser(i))), \
       for [i=1:nc] csv using (sel(an(ser(i)), pn(ser(i))) ? column("dk_bound") : NaN):(column("dk_err")) \
         with points pt algo_pt(an(ser(i))) lc rgb algo_shade(an(ser(i)), pk(pn(ser(i))), 3) notitle, \
       for [i=1:nc] csv using (sel(an(ser(i)), pn(ser(i))) ? column("dv_bound") : NaN):(column("dv_err")) \
         with points pt algo_pt(an(ser(i))) lc rgb algo_shade(an(ser(i)), pk(pn(ser(i))), 3) notitle, \
       x with lines @theory title "observed = bound (y = x)"
  unset multiplot
  set output
}

# scaling: claims C5 and G5, from `polyrope sweep scaling --out F.csv`: wall time of the forward
# and backward passes against n for each algorithm and W, with each algorithm's cost model drawn
# through its measurements (one constant per series, fitted as Σ time / Σ model).
# Run by `polyrope plot F.csv`, or: gnuplot -e "csv='F.csv'; out='F'; combos='dense:general fft:general'" scaling.gp
# series: algo pos
load ARG0[1:strlen(ARG0) - strlen("scaling.gp")]."style.gp"
sel(a, p) = (strcol("algo") eq a && strcol("pos") eq p && strcol("status") eq "ok")
# the series with a measured time (low-rank on general W has none) and their fitted constants;
# first: 1 for the first series of its algorithm, which names the model in the legend
cs = ""
cf = ""
cb = ""
first = ""
algos = ""
eval stats_begin
do for [w in combos] {
  stats csv using (sel(an(w), pn(w)) ? isfin(column("time_s")) : 0) name "NF" nooutput
  if (NF_sum > 0) {
    stats csv using (sel(an(w), pn(w)) ? fin(column("time_s")) : 0) name "TF" nooutput
    stats csv using (sel(an(w), pn(w)) ? fin(column("back_time_s")) : 0) name "TB" nooutput
    stats csv using (sel(an(w), pn(w)) && isfin(column("time_s")) ? fin(column("model")) : 0) name "MM" nooutput
    cs = cs." ".w
    cf = cf.sprintf(" %.6e", MM_sum > 0 ? TF_sum / MM_sum : 0)
    cb = cb.sprintf(" %.6e", MM_sum > 0 ? TB_sum / MM_sum : 0)
    new = strstrt(algos." ", " ".an(w)." ") == 0
    first = first.(new ? " 1" : " 0")
    algos = algos.(new ? " ".an(w) : "")
  }
}
eval stats_end
nc = words(cs)
ser(i) = word(cs, i)
# W within an algorithm: RoPE dark, general W light
pk(p) = p eq "general" ? 2 : 1
model(a) = (a eq "dense" ? "n^2 s" : a eq "fft" ? "C(s+g,g)(d+1) n log_2 n" : "C(d+g,g)(d+1) n")
K = int((nc + words(algos) + 1) / 2)
do for [t in "png pdf"] {
  eval fig_term(t, 2, 1.7, K)
  set output out.".".t
  eval fig_multi(t, 2, 1.7, K)
  set logscale x 2
  set format x "2^{%L}"
  set logscale y 10
  set format y "10^{%L}"
  eval fig_axes
  set xlabel "sequence length n (tokens)" offset 0, 0.3
  do for [pass=1:2] {
    col = pass == 1 ? "time_s" : "back_time_s"
    cv = pass == 1 ? cf : cb
    set ylabel (pass == 1 ? "forward time (s)" : "backward time (s)")
    set title (pass == 1 ? "C5: forward pass" : "G5: backward pass")
    if (pass == 2) { eval fig_key(t, 2, 1.7, K) } else { unset key }
    plot for [i=1:nc] csv using (sel(an(ser(i)), pn(ser(i))) ? column("n") : NaN):(column(col)) \
           with linespoints pt algo_pt(an(ser(i))) lc rgb algo_shade(an(ser(i)), pk(pn(ser(i))), 2) \
           title sprintf("%s, %s W", algo_name(an(ser(i))), pn(ser(i))), \
         for [i=1:nc] csv using (sel(an(ser(i)), pn(ser(i))) ? column("n") : NaN):(word(cv, i) * column("model")) \
           with lines lw 1 dt 2 lc rgb algo_shade(an(ser(i)), pk(pn(ser(i))), 2) \
           title (word(first, i) eq "1" ? sprintf("c·%s", model(an(ser(i)))) : "")
  }
  unset multiplot
  set output
}

# style: loaded by every figure script, so that all figures look alike (issue 17).
# - One colour and one marker per algorithm in every figure (Okabe-Ito colours, readable by
#   colour-blind readers and in greyscale); a second variable within one algorithm (n, d, W) is a
#   shade of its colour, dark to light, and a dash pattern.
# - Other series (d, eps, W kinds in figures without algorithms) take the palette ser_rgb, whose
#   colours no algorithm uses.
# - The PDF is one column of a paper: 3.3 in wide, panels stacked, 8 pt text at that size; the
#   PNG is the same figure at 250 dpi with a title line naming the machine and commit (stamp,
#   passed by polyrope plot from the CSV's header), which the PDF does not carry.
# - Legends sit in a strip below the panels (fig_key), never over the data; axes are ranged to
#   the data (fig_axes).
set datafile separator comma
set datafile columnheaders
set datafile missing NaN
set encoding utf8

algo_rgb(a) = a eq "dense" ? 0x000000 : a eq "fft" ? 0x0072B2 : a eq "lowrank" ? 0xD55E00 : 0x009E73
algo_pt(a) = a eq "dense" ? 5 : a eq "fft" ? 7 : a eq "lowrank" ? 9 : 13
algo_name(a) = a eq "dense" ? "dense" : a eq "fft" ? "FFT" : a eq "lowrank" ? "low-rank" : a
# shade k of m of colour c: mixed with white, up to 55 % for the last
mix(v, t) = int(v + (255 - v) * t)
shade_t(k, m) = m > 1 ? 0.55 * (k - 1) / (m - 1) : 0
shade(c, k, m) = mix(int(c / 65536) % 256, shade_t(k, m)) * 65536 + mix(int(c / 256) % 256, shade_t(k, m)) * 256 \
                 + mix(c % 256, shade_t(k, m))
algo_shade(a, k, m) = shade(algo_rgb(a), k, m)
# series without an algorithm: orange, green, purple, sky blue, grey, wine
ser_rgb(i) = word("15113984 40563 13400487 5682409 10066329 8921685", (i - 1) % 6 + 1) + 0
ser_pt(i) = word("7 5 9 11 13 15", (i - 1) % 6 + 1) + 0
# stats over columns with NaN cells: a "missing" cell would drop the whole row, so between
# stats_begin and stats_end NaN is a value, and fin/isfin turn it into a number
stats_begin = "unset datafile missing"
stats_end = "set datafile missing NaN"
# a finite value, else 0; 1 if finite
fin(v) = (v == v && abs(v) < 1e308) ? v : 0
isfin(v) = (v == v && abs(v) < 1e308) ? 1 : 0
# the two halves of a combos word "algo:pos" (polyrope plot's series combinations)
cut = 0
an(w) = (cut = strstrt(w, ":"), w[1:cut-1])
pn(w) = (cut = strstrt(w, ":"), w[cut+1:])
# theory and reference curves: dashed black, named by their formula in the legend
theory = "lw 1.2 dt 2 lc rgb '#000000'"

if (!exists("stamp")) stamp = ""
# Page geometry in inches, for np stacked panels with plot areas P high and a legend of K rows
# below the last: 3.3 in wide; panel title, x tics and label, the PNG's stamp line fixed.
fig_w = 3.3
fig_st(t) = (t eq "png" && stamp ne "") ? 0.2 : 0
fig_keyh(K) = K * 0.125 + 0.06
fig_h(t, np, P, K) = fig_st(t) + np * (0.2 + P + 0.42) + fig_keyh(K)
fig_term(t, np, P, K) = t eq "pdf" \
  ? sprintf("set terminal pdfcairo size %gin,%gin font 'Helvetica,7' linewidth 1 rounded enhanced", fig_w, fig_h(t, np, P, K)) \
  : sprintf("set terminal pngcairo size %d,%d font 'Helvetica,7' fontscale 2.6 linewidth 2.6 rounded enhanced", \
            int(fig_w * 250), int(fig_h(t, np, P, K) * 250))
# np panels with fixed margins (all plot areas alike); in the PNG under the stamp line
fig_multi(t, np, P, K) = sprintf("set multiplot layout %d,1 margins %g,%g,%g,%g spacing 0,%g %s", np, \
  0.56 / fig_w, 1 - 0.12 / fig_w, (fig_keyh(K) + 0.42) / fig_h(t, np, P, K), 1 - (fig_st(t) + 0.2) / fig_h(t, np, P, K), \
  0.62 / fig_h(t, np, P, K), fig_st(t) > 0 ? "title stamp noenhanced font ',6'" : "")
# the legend in the strip below the last panel, never over the data
fig_key(t, np, P, K) = sprintf("set key at screen %g, screen %g left top Left reverse samplen 2.5 spacing 1 width -2 maxrows %d", \
  0.02, (fig_keyh(K) - 0.03) / fig_h(t, np, P, K), K)
set pointsize 1
set grid lc rgb "#d0d0d0" lw 0.5
set tics scale 0.6
# ranged to the data: no empty decades; a small margin so that markers are not cut
fig_axes = "set autoscale fix; set offsets graph 0.04, graph 0.04, graph 0.06, graph 0.06"

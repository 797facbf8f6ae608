/* pr_certify's Arb fallback for dK and dV at any n (docs/certify.md L20): key row j of dK and dV needs
 * column j of P and dS, that is P_ij for every query row i of every head of the kv group. With each row's
 * shift m_i, l_i = Σ_j e^{M_ij - m_i} and D_i = ⟨dO_i, O_i⟩ as balls (from the double pass's enclosures, L4,
 * L9, L19; or from the row recomputed in Arb, L7), column j costs O(g·n·d) ball operations. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "pr_status.h"
#include "pr_timing.h"
#include "pr_certexp.h"
#include "pr_certify_impl.h"

/* the group's rows as balls, and the inputs as balls where a column reads them often */
typedef struct {
    const cert_prob_t *p;
    const pr_posw_struct *W;
    const double *Q, *K, *V, *dO; /* Q, dO: g×n×d; K, V: n×d */
    int g;
    arf_struct *shift;            /* g×n: m_i */
    arb_ptr L, D;                 /* g×n: l_i ∋ Σ_j e^{M_ij - m_i}, D_i */
    unsigned char *ok;            /* g×n: the row's balls hold */
    arb_ptr Qs, dOb;              /* g×n×d: σR_iQ_i (not with W), dO */
    arb_ptr QsT, dObT;            /* the same g×d×n (transposed per head), for the sums over i: a key row reads
                                     them in order, not at a stride of d balls (a page apart at d = 128) */
    arb_ptr Kr, Vb;               /* n×d: R_jK_j, V (the rows' refinement only; NULL before) */
    arb_t sig;
} cols_t;

/* row (h, i)'s balls from the double pass (L20), in Arb from its doubles: l_i in [S/((1 + g)(1 + λ)),
 * S/((1 - g)(1 - λ)) + under·2^-1008] and D̂ ± eD, if finite */
static void row_from_pass(cols_t *c, size_t t, const cert_rowenc_t *e)
{
    slong prec = c->p->prec;
    c->ok[t] = e->ok && e->S > 0.0 && isfinite(e->S) && e->g >= 0.0 && e->lam >= 0.0 && e->g + e->lam < 0.5 &&
               isfinite(e->D) && isfinite(e->eD) && isfinite(e->shift);
    if (!c->ok[t])
        return;
    arb_t x, y;
    arf_t a, b;
    arb_init(x);
    arb_init(y);
    arf_init(a);
    arf_init(b);
    for (int s = -1; s <= 1; s += 2) {
        arb_set_d(x, e->g);
        arb_set_d(y, e->lam);
        arb_mul_si(x, x, s, prec);
        arb_mul_si(y, y, s, prec);
        arb_add_ui(x, x, 1, prec);
        arb_add_ui(y, y, 1, prec);
        arb_mul(x, x, y, prec);
        arb_set_d(y, e->S);
        arb_div(x, y, x, prec);
        if (s < 0) {
            arb_set_d(y, e->under);
            arb_mul_2exp_si(y, y, -1008);
            arb_add(x, x, y, prec);
            arb_get_ubound_arf(b, x, prec);
        } else {
            arb_get_lbound_arf(a, x, prec);
        }
    }
    arb_set_interval_arf(c->L + t, a, b, prec);
    arb_set_d(c->D + t, e->D);
    arf_set_d(a, e->eD);
    arb_add_error_arf(c->D + t, a);
    arf_set_d(c->shift + t, e->shift);
    arb_clear(x);
    arb_clear(y);
    arf_clear(a);
    arf_clear(b);
}

/* row (h, i) recomputed in Arb (L7): its own shift, l_i and D_i; A: n balls, O: d balls of scratch */
static void row_refine(cols_t *c, int h, int i, arb_ptr A, arb_ptr O)
{
    const cert_prob_t *p = c->p;
    size_t t = (size_t)h * p->n + i, nd = (size_t)p->n * p->d;
    pr_certify_arb_row_stats(A, O, c->shift + t, c->L + t, c->D + t, c->W ? NULL : c->Qs + t * p->d,
                             c->Q + h * nd + (size_t)i * p->d, c->dOb + t * p->d, c->K, c->Kr, c->Vb, c->sig, i,
                             c->W, p, p->prec);
    c->ok[t] = 1;
}

/* scratch of one column */
typedef struct {
    arb_ptr P, dS;  /* n each */
    arb_ptr kj, vj; /* d each: R_jK_j (K_j with W), V_j */
    arb_ptr x, y;   /* max(s, n) each: a general W's products */
    arb_ptr U, dV;  /* d each */
    arb_t t;
} colscr_t;

/* the score M_ij - m_i's ball without the shift: σ (R_iQ_i)·(R_jK_j) + β, or with W σ Σ_k Q_{i,a_k}
 * w_k(i-j) K_{j,b_k} + β (the products exact at prec >= 106, L14) */
static void score(arb_t z, const cols_t *c, colscr_t *s, int h, int i, int j)
{
    const cert_prob_t *p = c->p;
    int n = p->n, d = p->d;
    slong prec = p->prec;
    if (!c->W) {
        arb_dot(z, NULL, 0, c->Qs + ((size_t)h * n + i) * d, 1, s->kj, 1, d, prec);
    } else {
        const pr_posw_struct *W = c->W;
        size_t L = 2 * (size_t)n - 1, o = (size_t)(i - j + n - 1);
        const double *Qi = c->Q + ((size_t)h * n + i) * d;
        for (int k = 0; k < W->s; k++) {
            arb_set_d(s->x + k, Qi[W->a[k]]);
            cert_mul_d(s->x + k, s->x + k, W->w[k * L + o], prec);
        }
        arb_dot(z, NULL, 0, s->x, 1, s->y, 1, W->s, prec);
        arb_mul(z, z, c->sig, prec);
    }
    if (p->alibi > 0.0) {
        arb_t b;
        arb_init(b);
        pr_certify_bias_arb(b, p, (long)i - j, prec);
        arb_add(z, z, b, prec);
        arb_clear(b);
    }
}

/* L20: key row j of the group's dK and dV in balls: P_ij = e^{M_ij - m_i}/l_i, dS_ij = P_ij(dO_i·V_j - D_i),
 * dV_j = Σ_h Σ_i P_ij dO_i, dK_j = R_jᵀ Σ_h Σ_i dS_ij σR_iQ_i (with W: σ Σ_k ... as L16) */
static void column(arb_ptr dKj, arb_ptr dVj, const cols_t *c, colscr_t *s, int j)
{
    const cert_prob_t *p = c->p;
    int n = p->n, d = p->d, i0 = p->causal ? j : 0;
    slong prec = p->prec;
    const double *Kj = c->K + (size_t)j * d;
    if (!c->W)
        pr_certify_rotate_row_arb(s->kj, Kj, j, p, prec);
    else
        for (int k = 0; k < c->W->s; k++)
            arb_set_d(s->y + k, Kj[c->W->b[k]]);
    for (int a = 0; a < d; a++)
        arb_set_d(s->vj + a, c->V[(size_t)j * d + a]);
    _arb_vec_zero(s->U, d);
    _arb_vec_zero(dVj, d);
    for (int h = 0; h < c->g; h++) {
        size_t r0 = (size_t)h * n;
        for (int i = 0; i < i0; i++)
            arb_zero(s->dS + i); /* masked: P = dS = 0 (read by W's sums) */
        for (int i = i0; i < n; i++) {
            score(s->t, c, s, h, i, j);
            arb_sub_arf(s->t, s->t, c->shift + r0 + i, prec);
            arb_exp(s->t, s->t, prec);
            arb_div(s->P + i, s->t, c->L + r0 + i, prec);
            arb_dot(s->t, c->D + r0 + i, 1, c->dOb + (r0 + i) * d, 1, s->vj, 1, d, prec); /* D_i - dO_i·V_j */
            arb_neg(s->t, s->t);
            arb_mul(s->dS + i, s->P + i, s->t, prec);
        }
        for (int a = 0; a < d; a++) {
            size_t o = ((size_t)h * d + a) * n + i0;
            arb_dot(dVj + a, dVj + a, 0, s->P + i0, 1, c->dObT + o, 1, n - i0, prec);
            if (!c->W)
                arb_dot(s->U + a, s->U + a, 0, s->dS + i0, 1, c->QsT + o, 1, n - i0, prec);
        }
        if (c->W)
            pr_certify_arb_w_grad_row(s->U, s->dS, 1, n, j, 0, c->Q + r0 * d, c->W, p, s->x, prec);
    }
    if (c->W)
        _arb_vec_scalar_mul(s->U, s->U, d, c->sig, prec);
    pr_certify_rotate_balls(dKj, s->U, j, -1, p, prec);
}

/* the element states of row j from the balls, kept where the double pass had decided, and the tighter of
 * the two enclosures (both hold) */
static void judge_row(double *lo, double *hi, unsigned char *st, const double *cand, arb_srcptr ref,
                      const cert_prob_t *p, double *lo2, double *hi2, unsigned char *st2)
{
    pr_certify_judge(lo2, hi2, st2, cand, ref, p->d, p, p->prec);
    for (int a = 0; a < p->d; a++) {
        lo[a] = lo2[a] > lo[a] ? lo2[a] : lo[a];
        hi[a] = hi2[a] < hi[a] ? hi2[a] : hi[a];
        st[a] = st[a] == CERT_OPEN ? st2[a] : st[a];
    }
}

static int cols_init(cols_t *c, const cert_prob_t *p)
{
    int n = p->n, d = p->d;
    size_t gn = (size_t)c->g * n;
    c->p = p;
    arb_init(c->sig);
    pr_certify_sigma_arb(c->sig, p, p->prec);
    c->shift = malloc(sizeof(arf_struct) * gn);
    c->ok = calloc(gn, 1);
    if (!c->shift || !c->ok)
        return PR_ENOMEM;
    for (size_t t = 0; t < gn; t++)
        arf_init(c->shift + t);
    c->L = _arb_vec_init((slong)gn);
    c->D = _arb_vec_init((slong)gn);
    c->dOb = _arb_vec_init((slong)(gn * d));
    c->dObT = _arb_vec_init((slong)(gn * d));
    c->Qs = c->W ? NULL : _arb_vec_init((slong)(gn * d));
    c->QsT = c->W ? NULL : _arb_vec_init((slong)(gn * d));
    for (size_t t = 0; t < gn; t++) {
        int i = (int)(t % n);
        size_t o = (t - i) * d + i; /* head t / n's block, column 0, row i */
        for (int a = 0; a < d; a++) {
            arb_set_d(c->dOb + t * d + a, c->dO[t * d + a]);
            arb_set(c->dObT + o + (size_t)a * n, c->dOb + t * d + a);
        }
        if (!c->W) {
            pr_certify_rotate_row_arb(c->Qs + t * d, c->Q + t * d, i, p, p->prec);
            _arb_vec_scalar_mul(c->Qs + t * d, c->Qs + t * d, d, c->sig, p->prec);
            for (int a = 0; a < d; a++)
                arb_set(c->QsT + o + (size_t)a * n, c->Qs + t * d + a);
        }
    }
    return PR_OK;
}

static void cols_clear(cols_t *c)
{
    int n = c->p->n, d = c->p->d;
    size_t gn = (size_t)c->g * n;
    if (c->shift && c->ok) {
        for (size_t t = 0; t < gn; t++)
            arf_clear(c->shift + t);
        _arb_vec_clear(c->L, (slong)gn);
        _arb_vec_clear(c->D, (slong)gn);
        _arb_vec_clear(c->dOb, (slong)(gn * d));
        _arb_vec_clear(c->dObT, (slong)(gn * d));
        if (c->Qs) {
            _arb_vec_clear(c->Qs, (slong)(gn * d));
            _arb_vec_clear(c->QsT, (slong)(gn * d));
        }
    }
    if (c->Kr) {
        _arb_vec_clear(c->Kr, (slong)n * d);
        _arb_vec_clear(c->Vb, (slong)n * d);
    }
    free(c->shift);
    free(c->ok);
    arb_clear(c->sig);
}

/* K rotated (not read with W) and V as balls, for the rows' refinement */
static void cols_kv(cols_t *c)
{
    const cert_prob_t *p = c->p;
    size_t nd = (size_t)p->n * p->d;
    c->Kr = _arb_vec_init((slong)nd);
    c->Vb = _arb_vec_init((slong)nd);
    for (int j = 0; !c->W && j < p->n; j++)
        pr_certify_rotate_row_arb(c->Kr + (size_t)j * p->d, c->K + (size_t)j * p->d, j, p, p->prec);
    for (size_t t = 0; t < nd; t++)
        arb_set_d(c->Vb + t, c->V[t]);
}

/* the element states of dK (t = 0) and dV (t = 1) of the group and the key rows still open */
typedef struct {
    const double *cand[2];
    double *lo, *hi;          /* 2 n×d */
    unsigned char *st, *open; /* 2 n×d; n: open or loose (L6's rule) */
    long done;                /* key rows recomputed */
    int *order;               /* the key rows by their largest upper bound (dK's, else dV's), largest first */
    double L[2];              /* the largest lower bound of dK, dV so far (only grows) */
    int undecided[2];         /* dK's, dV's verdict is unknown: its open elements matter (else only loose rows) */
} kvstate_t;

/* key row j may hold dK's or dV's largest error with a loose enclosure (pr_certify_row_loose against L,
 * read while other threads may raise it: a stale L only costs a row) */
static int row_loose(kvstate_t *k, int j, int d, size_t nd)
{
    int w = 0;
    for (int t = 0; t < 2; t++) {
        double L;
#pragma omp atomic read
        L = k->L[t];
        w |= k->cand[t] && pr_certify_row_loose(k->lo + t * nd + (size_t)j * d, k->hi + t * nd + (size_t)j * d, d, L);
    }
    return w;
}

/* raises L by key row j's lower bounds */
static void raise_lower(kvstate_t *k, int j, int d, size_t nd)
{
    for (int t = 0; t < 2; t++) {
        double l = k->cand[t] ? pr_certify_lower_max(k->lo + t * nd + (size_t)j * d, (size_t)d) : 0.0;
#pragma omp critical(pr_certify_cols_lower)
        k->L[t] = l > k->L[t] ? l : k->L[t];
    }
}

static int row_open(const kvstate_t *k, int j, int d, size_t nd)
{
    int o = 0;
    for (int t = 0; t < 2; t++)
        for (int a = 0; k->cand[t] && k->undecided[t] && a < d; a++)
            o |= k->st[t * nd + (size_t)j * d + a] == CERT_OPEN;
    return o;
}

static void colscr_init(colscr_t *s, int n, int d, int m)
{
    s->P = _arb_vec_init(n);
    s->dS = _arb_vec_init(n);
    s->kj = _arb_vec_init(d);
    s->vj = _arb_vec_init(d);
    s->x = _arb_vec_init(m);
    s->y = _arb_vec_init(m);
    s->U = _arb_vec_init(d);
    s->dV = _arb_vec_init(d);
    arb_init(s->t);
}

static void colscr_clear(colscr_t *s, int n, int d, int m)
{
    _arb_vec_clear(s->P, n);
    _arb_vec_clear(s->dS, n);
    _arb_vec_clear(s->kj, d);
    _arb_vec_clear(s->vj, d);
    _arb_vec_clear(s->x, m);
    _arb_vec_clear(s->y, m);
    _arb_vec_clear(s->U, d);
    _arb_vec_clear(s->dV, d);
    arb_clear(s->t);
}

/* the budget: 1 once the process's CPU time passed t_end (then for every thread) */
static int late(int *out, double t_end)
{
    int o;
#pragma omp atomic read
    o = *out;
    if (!o && pr_timing_cpu() >= t_end) {
        o = 1;
#pragma omp atomic write
        *out = 1;
    }
    return o;
}

/* every open key row j whose query rows (i >= j causal, else all) hold balls, over the OpenMP threads (each in
 * the certificate's environment, Arb's too) within the budget (*out = 1 when it ran out); the first failure */
static int sweep(kvstate_t *k, const cols_t *c, double t_end, unsigned char *seen, int *out)
{
    const cert_prob_t *p = c->p;
    int n = p->n, d = p->d, s = c->W ? c->W->s : 0, m = s > n ? s : n, st = PR_OK;
    size_t nd = (size_t)n * d;
    long lastbad = -1, done = 0; /* the largest query row without balls */
    for (size_t t = 0; t < (size_t)c->g * n; t++)
        lastbad = !c->ok[t] && (long)(t % n) > lastbad ? (long)(t % n) : lastbad;
#pragma omp parallel reduction(+ : done)
    {
        pr_certify_fenv_t env;
        int mine = pr_certify_fenv_enter(&env);
        colscr_t sc;
        colscr_init(&sc, n, d, m);
        arb_ptr dK = _arb_vec_init(d);
        double lo2[2 * 1024]; /* d <= 1024 (pr_certify_grad_group) */
        unsigned char st2[1024];
#pragma omp for schedule(dynamic, 1)
        for (int r = 0; r < n; r++) {
            int j = k->order[r];
            if (mine || !k->open[j] || lastbad >= (p->causal ? j : 0) || late(out, t_end))
                continue;
            if (!row_open(k, j, d, nd) && !row_loose(k, j, d, nd)) { /* L rose past it */
                k->open[j] = 0;
                continue;
            }
            column(dK, sc.dV, c, &sc, j);
            for (int t = 0; t < 2; t++)
                if (k->cand[t])
                    judge_row(k->lo + t * nd + (size_t)j * d, k->hi + t * nd + (size_t)j * d,
                              k->st + t * nd + (size_t)j * d, k->cand[t] + (size_t)j * d, t ? sc.dV : dK, p, lo2,
                              lo2 + d, st2);
            k->open[j] = (unsigned char)row_open(k, j, d, nd);
            raise_lower(k, j, d, nd);
            done += !seen[j];
            seen[j] = 1;
        }
        _arb_vec_clear(dK, d);
        colscr_clear(&sc, n, d, m);
        mine = pr_certify_fenv_leave(mine, &env);
        if (mine) {
#pragma omp critical(pr_certify_cols_status)
            st = mine;
        }
    }
    k->done += done;
    return st;
}

/* the query rows of every head recomputed in Arb over the threads as sweep, the last rows first (a causal key
 * row j reads rows i >= j), down to the first open key row (causal) or row 0, within the budget */
static int refine(cols_t *c, const kvstate_t *k, double t_end, int *out)
{
    const cert_prob_t *p = c->p;
    int n = p->n, g = c->g, jmin = 0, st = PR_OK;
    while (p->causal && jmin < n && !k->open[jmin])
        jmin++;
    if (!c->Kr)
        cols_kv(c);
    long tasks = (long)(n - jmin) * g;
#pragma omp parallel
    {
        pr_certify_fenv_t env;
        int mine = pr_certify_fenv_enter(&env);
        arb_ptr A = _arb_vec_init(n), O = _arb_vec_init(p->d);
#pragma omp for schedule(dynamic, 1)
        for (long q = 0; q < tasks; q++)
            if (!mine && !late(out, t_end))
                row_refine(c, (int)(q % g), n - 1 - (int)(q / g), A, O);
        _arb_vec_clear(A, n);
        _arb_vec_clear(O, p->d);
        mine = pr_certify_fenv_leave(mine, &env);
        if (mine) {
#pragma omp critical(pr_certify_cols_status)
            st = mine;
        }
    }
    return st;
}

int pr_certify_kv_cols(pr_certify_result_t *rk, pr_certify_result_t *rv, const double *dKc, const double *dVc,
                       const double *Q, const double *K, const double *V, const double *dO, const pr_posw_struct *W,
                       int g, const cert_prob_t *p, const cert_kvkeep_t *keep, double budget_s, int rows)
{
    int n = p->n, d = p->d, st = PR_OK;
    size_t nd = (size_t)n * d;
    double t_end = pr_timing_cpu() + budget_s;
    kvstate_t k = {{dKc, dVc}, malloc(sizeof(double) * 2 * nd), malloc(sizeof(double) * 2 * nd), malloc(2 * nd),
                   calloc(n, 1), 0, NULL, {0.0, 0.0},
                   {rk->verdict == PR_CERT_UNKNOWN, rv->verdict == PR_CERT_UNKNOWN}};
    unsigned char *seen = calloc(n, 1);
    cols_t c;
    memset(&c, 0, sizeof(c));
    c.W = W;
    c.Q = Q;
    c.K = K;
    c.V = V;
    c.dO = dO;
    c.g = g;
    if (!k.lo || !k.hi || !k.st || !k.open || !seen)
        st = PR_ENOMEM;
    long nopen = 0;
    for (int t = 0; t < 2 && !st; t++)
        if (k.cand[t])
            pr_certify_judge_d(k.lo + t * nd, k.hi + t * nd, k.st + t * nd, k.cand[t], keep->kv + 2 * t * nd,
                               keep->kv + (2 * t + 1) * nd, (long)nd, p);
    /* open key rows, and loose ones (L6's rule; recomputed once, largest upper bound first, while L rises:
       after it only open rows are open, so step (b) below runs for verdicts alone) */
    k.order = st ? NULL : malloc(sizeof(int) * n);
    if (!st && (!k.order || pr_certify_rows_by_upper(k.order, k.hi + (dKc ? 0 : nd), n, d)))
        st = PR_ENOMEM;
    for (int t = 0; t < 2 && !st; t++)
        k.L[t] = k.cand[t] ? pr_certify_lower_max(k.lo + t * nd, nd) : 0.0;
    for (int j = 0; j < n && !st; j++)
        nopen += k.open[j] = (unsigned char)(row_open(&k, j, d, nd) || row_loose(&k, j, d, nd));
    if (!st && nopen && !(st = cols_init(&c, p))) {
        for (size_t t = 0; t < (size_t)g * n; t++)
            row_from_pass(&c, t, keep->enc + t);
        int out = 0, left = 0;
        st = sweep(&k, &c, t_end, seen, &out);
        for (int j = 0; j < n; j++)
            left |= row_open(&k, j, d, nd);
        /* still open: the rows themselves in Arb (l_i, D_i as tight as prec), then the open key rows again */
        if (!st && rows && !out && left && !(st = refine(&c, &k, t_end, &out)))
            st = sweep(&k, &c, t_end, seen, &out);
    }
    for (int t = 0; t < 2 && !st && nopen; t++) { /* a failure leaves the double pass's results */
        pr_certify_result_t *r = t ? rv : rk;
        if (!k.cand[t])
            continue;
        double bm = r->bound_max;
        pr_certify_summarise(r, k.lo + t * nd, k.hi + t * nd, k.st + t * nd, k.cand[t], (long)nd, d, p->dtype);
        r->rows = n;
        r->rows_fallback = k.done;
        r->bound_max = bm;
    }
    if (c.p)
        cols_clear(&c);
    free(k.lo);
    free(k.hi);
    free(k.st);
    free(k.open);
    free(k.order);
    free(seen);
    return st;
}

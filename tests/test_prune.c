/* tests/test_prune.c — pruning: masks with exactly the requested ratio
 * (per layer and global), N:M masks with exactly N kept in every M along the
 * reduction dimension, the global threshold below every kept weight, channel
 * pruning that keeps shapes and connectivity consistent (batchnorms,
 * depthwise convolutions, the classifier) and the kept weights unchanged,
 * layers tied at an add kept whole, and bad options refused. */
#include "quasar.h"
#include "testnet.h"

#include <math.h>
#include <string.h>

static qs_graph_t *zoo(const char *name)
{
    qs_graph_t *g = NULL;
    ck_assert_msg(qs_zoo_build(name, 3, &g) == QS_OK, "%s", qs_last_error());
    return g;
}

static int64_t masked(const qs_node_t *n)
{
    int64_t c = 0;
    for (int64_t k = 0; n->mask && k < n->mask->size; k++)
        c += qs_f32(n->mask)[k] == 0.0f;
    return c;
}

static bool is_layer(const qs_node_t *n) { return (n->op == QS_OP_CONV2D || n->op == QS_OP_LINEAR) && n->weight; }

START_TEST(test_magnitude_ratio)
{
    qs_graph_t *g = zoo("fmnist-dwsep"), *p = NULL;
    qs_prune_opts_t o;
    qs_prune_opts_default(&o);
    ck_assert_int_eq(qs_prune_parse("magnitude", "t", &o), QS_OK);
    o.ratio = 0.3;
    qs_prune_report_t r;
    ck_assert_int_eq(qs_graph_prune(g, &o, &p, &r), QS_OK);
    for (int i = 0; i < p->nnodes; i++) {
        const qs_node_t *n = &p->nodes[i];
        if (!is_layer(n))
            continue;
        ck_assert_int_eq(masked(n), llround(0.3 * (double)n->weight->size));
        /* every pruned weight is no larger than every kept one */
        float maxp = 0, mink = INFINITY;
        for (int64_t k = 0; k < n->weight->size; k++) {
            float a = fabsf(qs_f32(n->weight)[k]);
            if (qs_f32(n->mask)[k] == 0.0f)
                maxp = a > maxp ? a : maxp;
            else
                mink = a < mink ? a : mink;
        }
        ck_assert(maxp <= mink);
    }
    ck_assert_int_eq(r.macs_after, r.macs_before);
    ck_assert_int_lt(r.macs_nonzero, r.macs_before);
    /* pruning again at the same ratio changes nothing: the masked weights count first */
    qs_graph_t *p2 = NULL;
    ck_assert_int_eq(qs_graph_prune(p, &o, &p2, &r), QS_OK);
    for (int i = 0; i < p->nnodes; i++)
        if (is_layer(&p->nodes[i]))
            ck_assert(memcmp(p->nodes[i].mask->data, p2->nodes[i].mask->data,
                             (size_t)p->nodes[i].mask->size * sizeof(float)) == 0);
    qs_graph_free(p2);
    qs_graph_free(p);
    /* global: one threshold, the overall ratio exact */
    ck_assert_int_eq(qs_prune_parse("global", "t", &o), QS_OK);
    o.ratio = 0.6;
    ck_assert_int_eq(qs_graph_prune(g, &o, &p, &r), QS_OK);
    ck_assert_int_eq(r.masked, llround(0.6 * (double)r.weights));
    float maxp = 0, mink = INFINITY;
    for (int i = 0; i < p->nnodes; i++) {
        const qs_node_t *n = &p->nodes[i];
        for (int64_t k = 0; is_layer(n) && k < n->weight->size; k++) {
            float a = fabsf(qs_f32(n->weight)[k]);
            if (qs_f32(n->mask)[k] == 0.0f)
                maxp = a > maxp ? a : maxp;
            else
                mink = a < mink ? a : mink;
        }
    }
    ck_assert(maxp <= mink);
    qs_graph_free(p);
    qs_graph_free(g);
}
END_TEST

START_TEST(test_nm)
{
    qs_graph_t *g = zoo(_i ? "fmnist-resnet" : "fmnist-dwsep"), *p = NULL;
    qs_prune_opts_t o;
    qs_prune_opts_default(&o);
    ck_assert_int_eq(qs_prune_parse(_i ? "nm:1:8" : "nm:2:4", "t", &o), QS_OK);
    ck_assert_int_eq(qs_graph_prune(g, &o, &p, NULL), QS_OK);
    for (int i = 0; i < p->nnodes; i++) {
        const qs_node_t *n = &p->nodes[i];
        if (!is_layer(n))
            continue;
        int64_t O = n->weight->shape[0], K = n->weight->size / O;
        const float *m = qs_f32(n->mask), *w = qs_f32(n->weight);
        for (int64_t r = 0; r < O; r++)
            for (int64_t k0 = 0; k0 < K; k0 += o.m) {
                int len = (int)(K - k0 < o.m ? K - k0 : o.m), kept = 0;
                float minkept = INFINITY, maxgone = 0;
                for (int j = 0; j < len; j++) {
                    float a = fabsf(w[r * K + k0 + j]);
                    if (m[r * K + k0 + j] != 0.0f)
                        kept++, minkept = a < minkept ? a : minkept;
                    else
                        maxgone = a > maxgone ? a : maxgone;
                }
                REQUIRE_MSG(kept == (o.n < len ? o.n : len), "node %s row %lld run %lld: %d kept", n->name,
                            (long long)r, (long long)k0, kept);
                REQUIRE(maxgone <= minkept);
            }
    }
    qs_graph_free(p);
    qs_graph_free(g);
}
END_TEST

START_TEST(test_channels)
{
    qs_graph_t *g = zoo("fmnist-dwsep"), *p = NULL;
    qs_prune_opts_t o;
    qs_prune_opts_default(&o);
    ck_assert_int_eq(qs_prune_parse(_i ? "channel-l2" : "channel-l1", "t", &o), QS_OK);
    o.ratio = 0.5;
    qs_prune_report_t r;
    ck_assert_msg(qs_graph_prune(g, &o, &p, &r) == QS_OK, "%s", qs_last_error());
    ck_assert_int_lt(r.macs_after, r.macs_before / 2);
    ck_assert_int_lt(r.params_after, r.params_before);
    int pruned = 0;
    for (int k = 0; k < r.nlayers; k++) {
        const qs_node_t *before = &g->nodes[r.layer[k].node], *after = &p->nodes[r.layer[k].node];
        if (r.layer[k].skipped) { /* kept whole, but a depthwise layer follows its input's channels */
            if (!strstr(r.layer[k].skipped, "depthwise"))
                ck_assert_int_eq(after->weight->shape[0], before->weight->shape[0]);
            continue;
        }
        pruned++;
        ck_assert_int_eq(r.layer[k].after, before->weight->shape[0] - before->weight->shape[0] / 2);
        ck_assert_int_eq(after->weight->shape[0], r.layer[k].after);
        /* the kept channels are the originals, in order */
        int64_t K = after->weight->size / after->weight->shape[0], Kb = before->weight->size / before->weight->shape[0];
        if (K == Kb)
            for (int64_t c = 0; c < after->weight->shape[0]; c++) {
                bool found = false;
                for (int64_t b = 0; b < before->weight->shape[0] && !found; b++)
                    found = memcmp(qs_f32(after->weight) + c * K, qs_f32(before->weight) + b * K,
                                   (size_t)K * sizeof(float)) == 0;
                ck_assert(found);
            }
    }
    ck_assert_int_ge(pruned, 3);
    /* the pruned graph runs (qs_graph_infer passed) and round-trips through a model file */
    char path[256];
    qs_test_path(path, sizeof path, "pruned.h5");
    ck_assert_int_eq(qs_model_save(p, path), QS_OK);
    qs_graph_t *back = NULL;
    ck_assert_int_eq(qs_model_load(path, &back), QS_OK);
    ck_assert_int_eq(qs_graph_macs(back), r.macs_after);
    qs_graph_free(back);
    unlink(path);
    qs_graph_free(p);
    qs_graph_free(g);
    /* on the residual network, the layers whose channels meet at an add are pruned together, to the same channels */
    g = zoo("fmnist-resnet");
    ck_assert_int_eq(qs_graph_prune(g, &o, &p, &r), QS_OK);
    int tied = 0;
    for (int k = 0; k < r.nlayers; k++) {
        if (r.layer[k].with < 0)
            continue;
        tied++;
        const qs_node_t *a = &p->nodes[r.layer[k].node], *b = &p->nodes[r.layer[k].with];
        ck_assert_int_eq(a->weight->shape[0], b->weight->shape[0]);
        ck_assert_int_lt(a->weight->shape[0], g->nodes[r.layer[k].node].weight->shape[0]);
        ck_assert_int_eq(r.layer[k].after, a->weight->shape[0]);
    }
    ck_assert_int_eq(tied, 3); /* b1.conv2 with stem, b2.proj with b2.conv2, b3.proj with b3.conv2 */
    ck_assert_int_lt(r.macs_after, r.macs_before * 6 / 10);
    qs_graph_free(p);
    qs_graph_free(g);
}
END_TEST

/* Re-estimation gives each batchnorm its input's statistics: twice is once, and a layer scaled by 3 before
 * a batchnorm computes what it did once its batchnorm is re-estimated. */
START_TEST(test_bn_reestimate)
{
    qs_graph_t *g = zoo("fmnist-dwsep");
    qs_test_data_t m;
    qs_test_data(&m, g, 48, 1);
    qs_dataset_t *d = &m.d;
    int n = 0;
    ck_assert_int_eq(qs_graph_bn_reestimate(g, d, 48, 1, NULL, &n), QS_OK);
    ck_assert_int_eq(n, 7);
    qs_graph_t *h = qs_graph_clone(g);
    ck_assert_int_eq(qs_graph_bn_reestimate(h, d, 48, 1, NULL, NULL), QS_OK);
    for (int i = 0; i < g->nnodes; i++)
        if (g->nodes[i].op == QS_OP_BATCHNORM) {
            ck_assert(memcmp(g->nodes[i].mean->data, h->nodes[i].mean->data, (size_t)g->nodes[i].mean->size * 4) == 0);
            ck_assert(memcmp(g->nodes[i].var->data, h->nodes[i].var->data, (size_t)g->nodes[i].var->size * 4) == 0);
        }
    qs_tensor_t *y0 = qs_test_logits(g, d);
    int stem = qs_graph_find(h, "stem");
    ck_assert_int_ge(stem, 0);
    for (int64_t k = 0; k < h->nodes[stem].weight->size; k++)
        qs_f32(h->nodes[stem].weight)[k] *= 3.0f;
    for (int64_t k = 0; h->nodes[stem].bias && k < h->nodes[stem].bias->size; k++)
        qs_f32(h->nodes[stem].bias)[k] *= 3.0f;
    ck_assert_int_eq(qs_graph_bn_reestimate(h, d, 48, 1, NULL, NULL), QS_OK);
    qs_tensor_t *y1 = qs_test_logits(h, d);
    double e = qs_test_rel_l2(y0, y1);
    ck_assert_msg(e < 1e-3, "relative error %g", e);
    qs_tensor_free(y0), qs_tensor_free(y1);
    qs_graph_free(h);
    qs_graph_free(g);
    qs_test_data_free(&m);
}
END_TEST

/* The per-layer choice meets the MAC target, takes ratios among the candidates, and lowers the threshold only
 * as far as needed: a looser target never keeps more MACs. */
START_TEST(test_select)
{
    qs_graph_t *g = zoo("fmnist-dwsep");
    qs_test_data_t m;
    qs_test_data(&m, g, 32, 1);
    qs_dataset_t *d = &m.d;
    qs_prune_select_opts_t o;
    qs_prune_select_opts_default(&o);
    qs_prune_select_t *a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    o.target = 0.6;
    ck_assert_msg(qs_prune_select(g, QS_PRUNE_CHANNEL_L1, d, &o, a) == QS_OK, "%s", qs_last_error());
    ck_assert(a->met);
    ck_assert(a->macs_fraction <= 0.6);
    ck_assert_int_eq(a->nlayers, 4); /* stem and the three pointwise layers; the rest are tied or followers */
    ck_assert_int_eq(a->evaluations, 1 + 4 * 9);
    for (int k = 0; k < a->nlayers; k++) {
        bool cand = a->ratio[k] == 0.0;
        for (int c = 0; c < o.ncand; c++)
            cand |= a->ratio[k] == o.cand[c];
        ck_assert(cand);
    }
    o.target = 0.3;
    ck_assert_int_eq(qs_prune_select(g, QS_PRUNE_CHANNEL_L1, d, &o, b), QS_OK);
    ck_assert(b->macs_fraction <= a->macs_fraction);
    ck_assert(b->threshold <= a->threshold);
    /* the ratios chosen, applied, give the MACs reported */
    double lr[64];
    for (int i = 0; i < g->nnodes; i++)
        lr[i] = 0.0;
    for (int k = 0; k < b->nlayers; k++)
        lr[b->node[k]] = b->ratio[k];
    qs_prune_opts_t po;
    qs_prune_opts_default(&po);
    po.method = QS_PRUNE_CHANNEL_L1;
    po.layer_ratio = lr;
    qs_graph_t *p = NULL;
    qs_prune_report_t r;
    ck_assert_int_eq(qs_graph_prune(g, &po, &p, &r), QS_OK);
    ck_assert(fabs((double)r.macs_after / (double)r.macs_before - b->macs_fraction) < 1e-12);
    qs_graph_free(p);
    ck_assert_int_lt(qs_prune_select(g, QS_PRUNE_NM, d, &o, b), 0);
    ck_assert_msg(strstr(qs_last_error(), "per-layer ratios apply to magnitude, channel-l1 and channel-l2"), "%s",
                  qs_last_error());
    free(a), free(b);
    qs_test_data_free(&m);
    qs_graph_free(g);
}
END_TEST

/* The least-squares refit brings the pruned network's outputs closer to the unpruned ones than removing the
 * channels alone; channel-act ranks on data; both refuse to run without it. */
START_TEST(test_refit)
{
    qs_graph_t *g = zoo(_i ? "fmnist-resnet" : "fmnist-dwsep");
    qs_test_data_t m;
    qs_test_data(&m, g, 40, 1);
    qs_dataset_t *d = &m.d;
    qs_tensor_t *y0 = qs_test_logits(g, d);
    qs_prune_opts_t o;
    qs_prune_opts_default(&o);
    ck_assert_int_eq(qs_prune_parse(_i ? "channel-act" : "channel-l1", "t", &o), QS_OK);
    o.ratio = 0.3;
    o.data = d;
    o.images = 40;
    qs_graph_t *p0 = NULL, *p1 = NULL;
    qs_prune_report_t r0, r1;
    ck_assert_msg(qs_graph_prune(g, &o, &p0, &r0) == QS_OK, "%s", qs_last_error());
    o.refit = true;
    ck_assert_msg(qs_graph_prune(g, &o, &p1, &r1) == QS_OK, "%s", qs_last_error());
    ck_assert_int_eq(r0.macs_after, r1.macs_after);
    ck_assert_int_lt(r1.macs_after, r1.macs_before);
    qs_tensor_t *a = qs_test_logits(p0, d), *b = qs_test_logits(p1, d);
    double e0 = qs_test_rel_l2(y0, a), e1 = qs_test_rel_l2(y0, b);
    ck_assert_msg(e1 < e0, "refit error %g, without %g", e1, e0);
    qs_tensor_free(a), qs_tensor_free(b), qs_tensor_free(y0);
    qs_graph_free(p0), qs_graph_free(p1);
    o.data = NULL;
    ck_assert_int_lt(qs_graph_prune(g, &o, &p0, NULL), 0);
    ck_assert_msg(strstr(qs_last_error(), "needs data (calibration images)"), "%s", qs_last_error());
    ck_assert_int_eq(qs_prune_parse("magnitude", "t", &o), QS_OK);
    o.data = d;
    ck_assert_int_lt(qs_graph_prune(g, &o, &p0, NULL), 0);
    ck_assert_msg(strstr(qs_last_error(), "the least-squares refit applies to channel pruning"), "%s", qs_last_error());
    qs_test_data_free(&m);
    qs_graph_free(g);
}
END_TEST

START_TEST(test_errors)
{
    qs_prune_opts_t o;
    qs_prune_opts_default(&o);
    ck_assert_int_lt(qs_prune_parse("nm:4:4", "--prune", &o), 0);
    ck_assert_msg(strstr(qs_last_error(), "expected nm:N:M with 1 <= N < M <= 16"), "%s", qs_last_error());
    ck_assert_int_lt(qs_prune_parse("random", "--prune", &o), 0);
    ck_assert_msg(strstr(qs_last_error(), "unknown pruning method 'random', expected one of: none, magnitude"), "%s",
                  qs_last_error());
    qs_graph_t *g = zoo("fmnist-dwsep"), *p = NULL;
    ck_assert_int_eq(qs_prune_parse("magnitude", "t", &o), QS_OK);
    o.ratio = 1.0;
    ck_assert_int_lt(qs_graph_prune(g, &o, &p, NULL), 0);
    ck_assert_msg(strstr(qs_last_error(), "ratio 1: expected a fraction in [0, 1)"), "%s", qs_last_error());
    ck_assert_ptr_null(p);
    qs_graph_free(g);
}
END_TEST

static Suite *prune_suite(void)
{
    Suite *s = suite_create("prune");
    TCase *tc = tcase_create("prune");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_magnitude_ratio);
    tcase_add_loop_test(tc, test_nm, 0, 2);
    tcase_add_loop_test(tc, test_channels, 0, 2);
    tcase_add_test(tc, test_bn_reestimate);
    tcase_add_test(tc, test_select);
    tcase_add_loop_test(tc, test_refit, 0, 2);
    tcase_add_test(tc, test_errors);
    suite_add_tcase(s, tc);
    return s;
}

QS_TEST_MAIN(prune_suite)

/* sim/qmodel.c — quantized-model files (docs/model-format.md, "Quantized
 * models (format version 2)"): the BN-folded graph written exactly as a
 * float model, a root group /quant with the configuration and the
 * calibration's provenance, and per node a group quant/ with its calibrated
 * quantizers (spec strings, scales, zero points, integer codes). Loading
 * rebuilds the qs_qnet_t that was saved, so that every tool reading the file
 * uses identical parameters.
 *
 * One set of checks (validate) runs before a save and after a load: specs
 * that parse, parameter shapes that fit the tensors, codes and zero points
 * inside the code range, positive finite scales, bias scales equal to
 * s_w·s_x. A file quasar writes therefore always loads, and a file another
 * tool wrote is either used as it is or rejected with a message naming the
 * file, the node and the problem. Like model.c, this file talks to HDF5
 * directly (attribute arrays, group listings, narrow integer datasets). */
#include "config.h"

#include "sim/sim_internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QS_QMODEL_VERSION 2

static bool has_weights(qs_op_t op) { return op == QS_OP_CONV2D || op == QS_OP_LINEAR; }

/* Schemes whose zero point is 0 by definition (quant.h). */
static bool zero_zp(qs_scheme_t s)
{
    return s == QS_SCHEME_SYMMETRIC || s == QS_SCHEME_SYMMETRIC_NARROW || s == QS_SCHEME_UNSIGNED;
}

static const char *const scheme_words[] = {"symmetric", "symmetric-narrow", "unsigned", "asymmetric",
                                           "asymmetric-signed"};

static const char *scheme_word(qs_scheme_t s)
{
    return (int)s >= 0 && s < QS_SCHEME_COUNT ? scheme_words[s] : "?";
}

/* The node group of node i, as model.c names it. */
static void node_group(const qs_graph_t *g, int i, char *buf, size_t n)
{
    snprintf(buf, n, "/nodes/%04d_%s", i, g->nodes[i].name);
}

/* The current message again with code (a spec that does not parse is a
 * corrupt file when it comes from one); NOMEM stays NOMEM. */
static int recode(int code)
{
    if (qs_last_status() == QS_ERR_NOMEM)
        return QS_ERR_NOMEM;
    char msg[QS_ERROR_MAX];
    snprintf(msg, sizeof msg, "%s", qs_last_error());
    return qs_error(code, "%s", msg);
}

/* ---- checks shared by save and load -------------------------------------------------------------- */

typedef struct {
    const char *path;
    bool saving; /* messages start "cannot save 'q.h5'" instead of "'q.h5'" */
} vctx_t;

static int vbad(const vctx_t *v, const qs_graph_t *g, int i, const char *part, const char *fmt, ...) QS_PRINTF(5, 6);
static int vbad(const vctx_t *v, const qs_graph_t *g, int i, const char *part, const char *fmt, ...)
{
    char msg[QS_ERROR_MAX], grp[QS_NAME_MAX + 32];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (i < 0)
        return qs_error(v->saving ? QS_ERR_INVALID : QS_ERR_FORMAT, "%s'%s': /quant: %s", v->saving ? "cannot save " : "",
                        v->path, msg);
    node_group(g, i, grp, sizeof grp);
    return qs_error(v->saving ? QS_ERR_INVALID : QS_ERR_FORMAT, "%s'%s': node '%s' (%s/quant/%s): %s",
                    v->saving ? "cannot save " : "", v->path, g->nodes[i].name, grp, part, msg);
}

/* The library's message for node i, with the file and node in front. */
static int vcontext(const vctx_t *v, const qs_graph_t *g, int i, const char *part)
{
    char grp[QS_NAME_MAX + 32];
    node_group(g, i, grp, sizeof grp);
    int rc = qs_error_context("%s'%s': node '%s' (%s/quant/%s): ", v->saving ? "cannot save " : "", v->path,
                              g->nodes[i].name, grp, part);
    return v->saving ? rc : recode(QS_ERR_FORMAT);
}

/* Activation quantizers apply to one sample's tensor (as qnet.c checks them):
 * per tensor, or per channel on axis 0. */
static const char *act_quantizer_problem(const qs_quantizer_t *q)
{
    if (q->gran.kind == QS_GRAN_GROUP)
        return "gran=group is for weights; activations are quantized per tensor or per channel";
    if (q->gran.kind == QS_GRAN_CHANNEL && q->gran.axis != 0 && q->gran.axis != -3)
        return "activations are quantized per channel on axis 0 (C of C,H,W)";
    return NULL;
}

static int check_codes(const vctx_t *v, const qs_graph_t *g, int i, const char *part, const char *name,
                       const qs_quantizer_t *qz, const int32_t *c, int64_t n)
{
    int64_t lo, hi;
    qs_quantizer_code_range(qz, &lo, &hi);
    for (int64_t k = 0; k < n; k++)
        if (c[k] < lo || c[k] > hi)
            return vbad(v, g, i, part, "%s[%lld] is %ld, outside the code range %lld..%lld of bits=%d, scheme=%s", name,
                        (long long)k, (long)c[k], (long long)lo, (long long)hi, qz->bits, scheme_word(qz->scheme));
    return QS_OK;
}

static int check_scales(const vctx_t *v, const qs_graph_t *g, int i, const char *part, const float *s, int64_t n)
{
    for (int64_t k = 0; k < n; k++)
        if (!(s[k] > 0.0f) || !isfinite(s[k]))
            return vbad(v, g, i, part, "scale[%lld] is %g; scales must be positive and finite", (long long)k,
                        (double)s[k]);
    return QS_OK;
}

/* p must be the parameters qz gives data of the given shape, with positive
 * finite scales and zero points on the grid. */
static int check_params(const vctx_t *v, const qs_graph_t *g, int i, const char *part, const qs_quantizer_t *qz,
                        const qs_qparams_t *p, int ndim, const int64_t *shape)
{
    qs_qparams_t *e = NULL;
    char a[96], b[96], spec[512];
    if (qs_qparams_create(qz, ndim, shape, &e) < 0) {
        qs_error_context("the quantizer %s does not fit a tensor of shape %s: ", qs_quantizer_str(qz, spec, sizeof spec),
                         qs_shape_str(ndim, shape, a, sizeof a));
        return vcontext(v, g, i, part);
    }
    bool same = e->ndim == p->ndim && e->count == p->count;
    for (int d = 0; same && d < e->ndim; d++)
        same = e->shape[d] == p->shape[d];
    if (!same) {
        int rc = vbad(v, g, i, part, "scale and zero_point have shape %s, but gran=%s on a tensor of shape %s gives %s",
                      qs_shape_str(p->ndim, p->shape, a, sizeof a),
                      qz->gran.kind == QS_GRAN_TENSOR ? "tensor" : qz->gran.kind == QS_GRAN_CHANNEL ? "channel" : "group",
                      qs_shape_str(ndim, shape, spec, sizeof spec), qs_shape_str(e->ndim, e->shape, b, sizeof b));
        qs_qparams_free(e);
        return rc;
    }
    int nl = e->nlevels;
    qs_qparams_free(e);
    int rc = check_scales(v, g, i, part, p->scale, p->count);
    if (rc < 0)
        return rc;
    if (nl != p->nlevels)
        return vbad(v, g, i, part, "the grid has %d levels per slice, but the file holds %d", nl, p->nlevels);
    for (int64_t k = 0; k < (int64_t)nl * p->count; k++)
        if (!isfinite(p->levels[k]) || (k % nl && p->levels[k] < p->levels[k - 1]))
            return vbad(v, g, i, part, "levels[%lld][%lld] is %g; levels must be finite and ascending",
                        (long long)(k / nl), (long long)(k % nl), (double)p->levels[k]);
    if (zero_zp(qz->scheme) || qz->grid != QS_GRID_UNIFORM) {
        for (int64_t k = 0; k < p->count; k++)
            if (p->zero_point[k] != 0)
                return vbad(v, g, i, part, "zero_point[%lld] is %ld; scheme=%s has zero point 0", (long long)k,
                            (long)p->zero_point[k], scheme_word(qz->scheme));
        return QS_OK;
    }
    return check_codes(v, g, i, part, "zero_point", qz, p->zero_point, p->count);
}

static bool same_params(const qs_qparams_t *a, const qs_qparams_t *b)
{
    if (!a || !b)
        return a == b;
    if (a->count != b->count || a->ndim != b->ndim || a->nlevels != b->nlevels)
        return false;
    if (a->nlevels && memcmp(a->levels, b->levels, (size_t)a->count * (size_t)a->nlevels * sizeof *a->levels) != 0)
        return false;
    for (int d = 0; d < a->ndim; d++)
        if (a->shape[d] != b->shape[d])
            return false;
    return memcmp(a->scale, b->scale, (size_t)a->count * sizeof *a->scale) == 0 &&
           memcmp(a->zero_point, b->zero_point, (size_t)a->count * sizeof *a->zero_point) == 0;
}

static bool same_quantizer(const qs_quantizer_t *a, const qs_quantizer_t *b)
{
    char x[512], y[512];
    return strcmp(qs_quantizer_str(a, x, sizeof x), qs_quantizer_str(b, y, sizeof y)) == 0;
}

static int check_weights(const qs_qnet_t *q, const vctx_t *v, int i)
{
    const qs_graph_t *g = q->g;
    const qs_qlayer_t *l = &q->layer[i];
    const qs_node_t *nd = &g->nodes[i];
    char a[96], b[96];
    if (!has_weights(nd->op) || !nd->weight)
        return vbad(v, g, i, "weights", "this %s has no weights to quantize", qs_op_name(nd->op));
    if (qs_quantizer_validate(&l->wquant) < 0)
        return vcontext(v, g, i, "weights");
    if (!l->wp || !l->wcodes)
        return vbad(v, g, i, "weights", "the weights are quantized but their %s missing",
                    l->wp ? "codes are" : "scales are");
    qs_tensor_t view = qs_sim_weight_view(nd, &l->wquant, NULL, QS_F32);
    int rc = check_params(v, g, i, "weights", &l->wquant, l->wp, view.ndim, view.shape);
    if (rc < 0)
        return rc;
    if (l->wcodes->dtype != QS_I32 || !qs_shape_equal(l->wcodes, nd->weight))
        return vbad(v, g, i, "weights", "codes have shape %s, but the weight has shape %s",
                    qs_shape_str(l->wcodes->ndim, l->wcodes->shape, a, sizeof a),
                    qs_shape_str(nd->weight->ndim, nd->weight->shape, b, sizeof b));
    return check_codes(v, g, i, "weights", "codes", &l->wquant, qs_i32(l->wcodes), l->wcodes->size);
}

static int check_bias(const qs_qnet_t *q, const vctx_t *v, int i)
{
    const qs_graph_t *g = q->g;
    const qs_qlayer_t *l = &q->layer[i];
    const qs_node_t *nd = &g->nodes[i];
    if (!has_weights(nd->op) || !nd->bias)
        return vbad(v, g, i, "bias", "node '%s' (%s) has no bias to quantize", nd->name, qs_op_name(nd->op));
    if (qs_quantizer_validate(&l->bquant) < 0)
        return vcontext(v, g, i, "bias");
    if (l->bquant.scheme != QS_SCHEME_SYMMETRIC && l->bquant.scheme != QS_SCHEME_SYMMETRIC_NARROW)
        return vbad(v, g, i, "bias", "scheme=%s: biases are quantized with zero point 0 (symmetric or symmetric-narrow)",
                    scheme_word(l->bquant.scheme));
    if (!l->bcodes && !l->bscale)
        return QS_OK; /* configured, but left in float (see quantize_bias in qnet.c) */
    const int64_t o = nd->bias->size;
    if (!l->bcodes || !l->bscale)
        return vbad(v, g, i, "bias", "the bias has %s but no %s", l->bcodes ? "codes" : "a scale",
                    l->bcodes ? "scale" : "codes");
    if (l->bcodes->dtype != QS_I32 || l->bcodes->ndim != 1 || l->bcodes->size != o || l->bscale->dtype != QS_F32 ||
        l->bscale->ndim != 1 || l->bscale->size != o)
        return vbad(v, g, i, "bias", "codes and scale must hold one value per output channel ([%lld])", (long long)o);
    if (!l->wq)
        return vbad(v, g, i, "bias", "the bias has codes but the weights are left in float (bias codes are at s_w*s_x)");
    int rc = check_codes(v, g, i, "bias", "codes", &l->bquant, qs_i32(l->bcodes), o);
    if (rc >= 0)
        rc = check_scales(v, g, i, "bias", qs_f32(l->bscale), o);
    if (rc < 0)
        return rc;
    /* the scale is s_w·s_x, so the integer engine and the fake-quant engine agree */
    int p = qs_sim_input_point(q, i);
    if (p < 0 || q->layer[p].ap->count != 1)
        return vbad(v, g, i, "bias", "the bias has codes but the layer's input is not quantized per tensor "
                    "(bias codes are at s_w*s_x with one s_x)");
    if (l->wp->count != 1 && l->wp->count != o)
        return vbad(v, g, i, "bias", "the bias has codes but the weights have %lld scales, neither one nor one per "
                    "output channel (%lld)", (long long)l->wp->count, (long long)o);
    const float sx = q->layer[p].ap->scale[0];
    const int64_t per = l->wp->count == 1 ? 0 : 1;
    const float *bs = qs_f32(l->bscale);
    for (int64_t k = 0; k < o; k++) {
        float want = l->wp->scale[k * per] * sx;
        if (bs[k] != want)
            return vbad(v, g, i, "bias", "scale[%lld] is %.9g, but s_w*s_x is %.9g (s_w %.9g, s_x %.9g of node '%s')",
                        (long long)k, (double)bs[k], (double)want, (double)l->wp->scale[k * per], (double)sx,
                        g->nodes[p].name);
    }
    return QS_OK;
}

static int check_acts(const qs_qnet_t *q, const vctx_t *v, int i)
{
    const qs_graph_t *g = q->g;
    const qs_qlayer_t *l = &q->layer[i];
    const qs_node_t *nd = &g->nodes[i];
    if (l->point < 0)
        return vbad(v, g, i, "acts", "the output of this %s is not a quantization point (it stays in float)",
                    qs_op_name(nd->op));
    if (l->point != i)
        return vbad(v, g, i, "acts", "not a quantization point: the output of this %s is quantized at node '%s'",
                    qs_op_name(nd->op), g->nodes[l->point].name);
    if (qs_quantizer_validate(&l->aquant) < 0)
        return vcontext(v, g, i, "acts");
    const char *why = act_quantizer_problem(&l->aquant);
    if (why)
        return vbad(v, g, i, "acts", "%s", why);
    if (l->ashare >= 0) {
        const qs_qlayer_t *s = &q->layer[l->ashare];
        if (!s->aq || !same_quantizer(&s->aquant, &l->aquant) || !same_params(s->ap, l->ap))
            return vbad(v, g, i, "acts", "this %s keeps the grid of node '%s', but its activation quantizer or parameters "
                        "differ from that node's", qs_op_name(nd->op), g->nodes[l->ashare].name);
        return QS_OK;
    }
    if (!l->ap)
        return QS_OK;
    qs_quantizer_t bq;
    qs_sim_act_batch_quantizer(&l->aquant, &bq);
    int64_t shape[4] = {1, nd->out_shape[0], nd->out_shape[1], nd->out_shape[2]};
    return check_params(v, g, i, "acts", &bq, l->ap, 1 + nd->out_ndim, shape);
}

/* Everything save writes and load reads must be consistent: the checks of
 * the file format, on the structure. */
static int validate(const qs_qnet_t *q, const vctx_t *v)
{
    const qs_graph_t *g = q->g;
    int rc;
    if (q->cfg.noverrides < 0 || q->cfg.noverrides > QS_QCONFIG_MAX_OVERRIDES)
        return vbad(v, g, -1, "", "%d layer overrides (at most %d)", q->cfg.noverrides, QS_QCONFIG_MAX_OVERRIDES);
    if (q->folded < 0)
        return vbad(v, g, -1, "", "folded_batchnorms is %d", q->folded);
    if (q->calibrated && (q->calib.images < 1 || q->calib.batch < 1))
        return vbad(v, g, -1, "", "calibrated on %lld images in batches of %lld; both must be at least 1",
                    (long long)q->calib.images, (long long)q->calib.batch);
    for (int i = 0; i < g->nnodes; i++) {
        const qs_qlayer_t *l = &q->layer[i];
        if (l->wq ? (rc = check_weights(q, v, i)) < 0 : 0)
            return rc;
        if (!l->wq && (l->wp || l->wcodes))
            return vbad(v, g, i, "weights", "the weights are left in float but have scales or codes");
        if (l->bq ? (rc = check_bias(q, v, i)) < 0 : 0)
            return rc;
        if (!l->bq && (l->bcodes || l->bscale))
            return vbad(v, g, i, "bias", "the bias is left in float but has codes or a scale");
        if (l->aq ? (rc = check_acts(q, v, i)) < 0 : 0)
            return rc;
        if (!l->aq && l->ap)
            return vbad(v, g, i, "acts", "the activations are left in float but have a scale");
        if (q->calibrated && l->aq && !l->ap)
            return vbad(v, g, i, "acts", "the model is calibrated, but this quantization point has no scale");
        if (!q->calibrated && (l->ap || l->bcodes))
            return vbad(v, g, i, l->ap ? "acts" : "bias", "the model is not calibrated (calibrated = 0), but this "
                        "node has calibrated %s", l->ap ? "activation scales" : "bias codes");
    }
    return QS_OK;
}

/* ---- writing ------------------------------------------------------------------------------------------ */

typedef struct {
    const qs_qnet_t *q;
    const char *path;
} saver_t;

static int w_attr(const saver_t *s, hid_t obj, const char *where, const char *name, hid_t ftype, hid_t mtype, int n,
                  const void *buf)
{
    hsize_t dims = (hsize_t)n;
    hid_t space = n > 0 ? H5Screate_simple(1, &dims, NULL) : H5Screate(H5S_SCALAR);
    hid_t a = space >= 0 ? H5Acreate2(obj, name, ftype, space, H5P_DEFAULT, H5P_DEFAULT) : H5I_INVALID_HID;
    int rc = QS_OK;
    if (a < 0 || H5Awrite(a, mtype, buf) < 0) {
        char d[200];
        rc = qs_error(QS_ERR_IO, "cannot write '%s': attribute '%s' of '%s': %s", s->path, name, where,
                      qs_sim_h5_detail(d));
    }
    if (a >= 0)
        H5Aclose(a);
    if (space >= 0)
        H5Sclose(space);
    return rc;
}

static int w_int(const saver_t *s, hid_t obj, const char *where, const char *name, int64_t v)
{
    return w_attr(s, obj, where, name, H5T_STD_I64LE, H5T_NATIVE_INT64, 0, &v);
}

static int w_double(const saver_t *s, hid_t obj, const char *where, const char *name, double v)
{
    return w_attr(s, obj, where, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 0, &v);
}

/* n strings (n 0: one, as a scalar attribute), variable-length UTF-8. */
static int w_strs(const saver_t *s, hid_t obj, const char *where, const char *name, int n, const char *const *v)
{
    hid_t st = H5Tcopy(H5T_C_S1);
    if (st < 0 || H5Tset_size(st, H5T_VARIABLE) < 0 || H5Tset_cset(st, H5T_CSET_UTF8) < 0) {
        if (st >= 0)
            H5Tclose(st);
        return qs_error(QS_ERR_INTERNAL, "cannot write '%s': cannot make a string type", s->path);
    }
    int rc = w_attr(s, obj, where, name, st, st, n, v);
    H5Tclose(st);
    return rc;
}

static int w_str(const saver_t *s, hid_t obj, const char *where, const char *name, const char *v)
{
    return w_strs(s, obj, where, name, 0, &v);
}

static int w_dset(const saver_t *s, hid_t grp, const char *where, const char *name, hid_t ftype, hid_t mtype, int ndim,
                  const int64_t *shape, const void *buf)
{
    hsize_t dims[QS_MAX_DIMS];
    for (int k = 0; k < ndim; k++)
        dims[k] = (hsize_t)shape[k];
    hid_t space = H5Screate_simple(ndim, dims, NULL);
    hid_t ds = space >= 0 ? H5Dcreate2(grp, name, ftype, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT) : H5I_INVALID_HID;
    int rc = QS_OK;
    if (ds < 0 || H5Dwrite(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
        char d[200];
        rc = qs_error(QS_ERR_IO, "cannot write '%s': dataset '%s/%s': %s", s->path, where, name, qs_sim_h5_detail(d));
    }
    if (ds >= 0)
        H5Dclose(ds);
    if (space >= 0)
        H5Sclose(space);
    return rc;
}

static hid_t w_group(const saver_t *s, hid_t parent, const char *name, const char *where, int *rc)
{
    hid_t grp = H5Gcreate2(parent, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    *rc = QS_OK;
    if (grp < 0) {
        char d[200];
        *rc = qs_error(QS_ERR_IO, "cannot write '%s': group '%s': %s", s->path, where, qs_sim_h5_detail(d));
    }
    return grp;
}

/* The narrowest of int8, int16, int32 that holds every code of q. */
static hid_t code_type(const qs_quantizer_t *q)
{
    int64_t lo, hi;
    qs_quantizer_code_range(q, &lo, &hi);
    if (lo >= INT8_MIN && hi <= INT8_MAX)
        return H5T_STD_I8LE;
    if (lo >= INT16_MIN && hi <= INT16_MAX)
        return H5T_STD_I16LE;
    return H5T_STD_I32LE;
}

static int w_params(const saver_t *s, hid_t grp, const char *where, const qs_qparams_t *p)
{
    int rc = w_dset(s, grp, where, "scale", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, p->ndim, p->shape, p->scale);
    if (rc >= 0)
        rc = w_dset(s, grp, where, "zero_point", H5T_STD_I32LE, H5T_NATIVE_INT32, p->ndim, p->shape, p->zero_point);
    int64_t lshape[2] = {p->count, p->nlevels};
    if (rc >= 0 && p->nlevels > 0) /* codebook grids: each slice's levels */
        rc = w_dset(s, grp, where, "levels", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, lshape, p->levels);
    return rc;
}

static int write_weights(const saver_t *s, hid_t qg, const char *base, int i)
{
    const qs_qlayer_t *l = &s->q->layer[i];
    char where[QS_NAME_MAX + 64], spec[512];
    snprintf(where, sizeof where, "%s/weights", base);
    int rc;
    hid_t grp = w_group(s, qg, "weights", where, &rc);
    if (grp < 0)
        return rc;
    const qs_qstats_t *st = &l->wstats;
    if ((rc = w_str(s, grp, where, "spec", qs_quantizer_str(&l->wquant, spec, sizeof spec))) >= 0 &&
        (rc = w_int(s, grp, where, "stats_count", st->count)) >= 0 &&
        (rc = w_int(s, grp, where, "stats_clipped", st->clipped)) >= 0 &&
        (rc = w_int(s, grp, where, "stats_nonfinite", st->nonfinite)) >= 0 &&
        (rc = w_double(s, grp, where, "stats_sse", st->sse)) >= 0 &&
        (rc = w_double(s, grp, where, "stats_signal", st->signal)) >= 0 &&
        (rc = w_double(s, grp, where, "stats_max_abs_err", st->max_abs_err)) >= 0 &&
        (rc = w_params(s, grp, where, l->wp)) >= 0)
        rc = w_dset(s, grp, where, "codes", code_type(&l->wquant), H5T_NATIVE_INT32, l->wcodes->ndim, l->wcodes->shape,
                    l->wcodes->data);
    H5Gclose(grp);
    return rc;
}

static int write_bias(const saver_t *s, hid_t qg, const char *base, int i)
{
    const qs_qlayer_t *l = &s->q->layer[i];
    char where[QS_NAME_MAX + 64], spec[512];
    snprintf(where, sizeof where, "%s/bias", base);
    int rc;
    hid_t grp = w_group(s, qg, "bias", where, &rc);
    if (grp < 0)
        return rc;
    if ((rc = w_str(s, grp, where, "spec", qs_quantizer_str(&l->bquant, spec, sizeof spec))) >= 0 && l->bcodes &&
        (rc = w_dset(s, grp, where, "codes", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, l->bcodes->shape, l->bcodes->data)) >= 0)
        rc = w_dset(s, grp, where, "scale", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 1, l->bscale->shape, l->bscale->data);
    H5Gclose(grp);
    return rc;
}

static int write_acts(const saver_t *s, hid_t qg, const char *base, int i)
{
    const qs_qlayer_t *l = &s->q->layer[i];
    char where[QS_NAME_MAX + 64], spec[512];
    snprintf(where, sizeof where, "%s/acts", base);
    int rc;
    hid_t grp = w_group(s, qg, "acts", where, &rc);
    if (grp < 0)
        return rc;
    if ((rc = w_str(s, grp, where, "spec", qs_quantizer_str(&l->aquant, spec, sizeof spec))) >= 0 && l->ashare >= 0)
        rc = w_str(s, grp, where, "shares", s->q->g->nodes[l->ashare].name);
    if (rc >= 0 && l->ap)
        rc = w_params(s, grp, where, l->ap);
    H5Gclose(grp);
    return rc;
}

static int write_root(const saver_t *s, hid_t file)
{
    const qs_qnet_t *q = s->q;
    const qs_qconfig_t *c = &q->cfg;
    int rc;
    hid_t grp = w_group(s, file, "quant", "/quant", &rc);
    if (grp < 0)
        return rc;
    static const char *const on_names[QS_QT_COUNT] = {"weights_on", "acts_on", "bias_on"};
    char spec[512];
    for (int t = 0; t < QS_QT_COUNT && rc >= 0; t++)
        if ((rc = w_str(s, grp, "/quant", qs_qtarget_name((qs_qtarget_t)t), qs_quantizer_str(&c->q[t], spec, sizeof spec))) >= 0)
            rc = w_int(s, grp, "/quant", on_names[t], c->on[t]);
    if (rc >= 0)
        rc = w_int(s, grp, "/quant", "override_count", c->noverrides);
    if (rc >= 0 && c->noverrides > 0) {
        const char *layer[QS_QCONFIG_MAX_OVERRIDES], *target[QS_QCONFIG_MAX_OVERRIDES], *ospec[QS_QCONFIG_MAX_OVERRIDES];
        for (int k = 0; k < c->noverrides; k++) {
            layer[k] = c->ov[k].layer;
            target[k] = qs_qtarget_name(c->ov[k].what);
            ospec[k] = c->ov[k].on ? c->ov[k].spec : "float";
        }
        if ((rc = w_strs(s, grp, "/quant", "override_layer", c->noverrides, layer)) >= 0 &&
            (rc = w_strs(s, grp, "/quant", "override_target", c->noverrides, target)) >= 0)
            rc = w_strs(s, grp, "/quant", "override_spec", c->noverrides, ospec);
    }
    uint64_t seed = q->calib.seed;
    if (rc >= 0 && (rc = w_int(s, grp, "/quant", "folded_batchnorms", q->folded)) >= 0 &&
        (rc = w_int(s, grp, "/quant", "calibrated", q->calibrated)) >= 0 &&
        (rc = w_str(s, grp, "/quant", "calib_data", q->calib.source)) >= 0 &&
        (rc = w_int(s, grp, "/quant", "calib_images", q->calib.images)) >= 0 &&
        (rc = w_int(s, grp, "/quant", "calib_batch", q->calib.batch)) >= 0 &&
        (rc = w_attr(s, grp, "/quant", "calib_seed", H5T_STD_U64LE, H5T_NATIVE_UINT64, 0, &seed)) >= 0)
        rc = w_str(s, grp, "/quant", "quasar_version", PACKAGE_VERSION);
    H5Gclose(grp);
    return rc;
}

static int save_extra(void *ctx, hid_t file, const char *path, const qs_graph_t *g)
{
    const saver_t *s = ctx;
    (void)path;
    int rc = write_root(s, file);
    for (int i = 0; i < g->nnodes && rc >= 0; i++) {
        const qs_qlayer_t *l = &s->q->layer[i];
        if (!l->wq && !l->bq && !l->aq)
            continue;
        char base[QS_NAME_MAX + 32], where[QS_NAME_MAX + 40];
        node_group(g, i, base, sizeof base);
        snprintf(where, sizeof where, "%s/quant", base);
        hid_t ng = H5Gopen2(file, base, H5P_DEFAULT);
        if (ng < 0) {
            char d[200];
            return qs_error(QS_ERR_IO, "cannot write '%s': cannot open group '%s': %s", s->path, base, qs_sim_h5_detail(d));
        }
        hid_t qg = w_group(s, ng, "quant", where, &rc);
        H5Gclose(ng);
        if (qg < 0)
            return rc;
        if (l->wq)
            rc = write_weights(s, qg, where, i);
        if (rc >= 0 && l->bq)
            rc = write_bias(s, qg, where, i);
        if (rc >= 0 && l->aq)
            rc = write_acts(s, qg, where, i);
        H5Gclose(qg);
    }
    return rc;
}

int qs_qnet_save(const qs_qnet_t *q, const char *path)
{
    if (!q || !q->g || !q->layer || !path || !*path)
        return qs_error(QS_ERR_INVALID, "qs_qnet_save: no quantized network or no file name");
    vctx_t v = {path, true};
    int rc = validate(q, &v);
    if (rc < 0)
        return rc;
    saver_t s = {q, path};
    return qs_sim_model_write(q->g, path, QS_QMODEL_VERSION, save_extra, &s);
}

/* ---- reading ------------------------------------------------------------------------------------------ */

typedef struct {
    const char *path;
    char where[2 * QS_NAME_MAX + 96]; /* "/quant" or "node 'conv1' (/nodes/0001_conv1/quant/weights)" */
} rd_t;

static int rbad(const rd_t *r, int code, const char *fmt, ...) QS_PRINTF(3, 4);
static int rbad(const rd_t *r, int code, const char *fmt, ...)
{
    char msg[QS_ERROR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return qs_error(code, "'%s': %s: %s", r->path, r->where, msg);
}

/* Object type of a group member: H5I_GROUP, H5I_DATASET, or H5I_BADID. */
static H5I_type_t member_type(hid_t grp, const char *name)
{
    if (H5Lexists(grp, name, H5P_DEFAULT) <= 0)
        return H5I_BADID;
    hid_t o = H5Oopen(grp, name, H5P_DEFAULT);
    if (o < 0)
        return H5I_BADID;
    H5I_type_t t = H5Iget_type(o);
    H5Oclose(o);
    return t;
}

/* Opens attribute name; *n gets its number of values and *cls its class.
 * Missing: H5I_INVALID_HID with *rc QS_OK when optional. */
static hid_t r_attr(const rd_t *r, hid_t obj, const char *name, bool required, hssize_t *n, H5T_class_t *cls, int *rc)
{
    *rc = QS_OK;
    htri_t ex = H5Aexists(obj, name);
    if (ex <= 0) {
        if (ex < 0 || required)
            *rc = rbad(r, QS_ERR_FORMAT, "attribute '%s' is missing", name);
        return H5I_INVALID_HID;
    }
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    hid_t space = a >= 0 ? H5Aget_space(a) : H5I_INVALID_HID;
    hid_t type = a >= 0 ? H5Aget_type(a) : H5I_INVALID_HID;
    *n = space >= 0 ? H5Sget_simple_extent_npoints(space) : -1;
    *cls = type >= 0 ? H5Tget_class(type) : H5T_NO_CLASS;
    if (space >= 0)
        H5Sclose(space);
    if (type >= 0)
        H5Tclose(type);
    if (a < 0 || *n < 0) {
        char d[200];
        *rc = rbad(r, QS_ERR_FORMAT, "cannot read attribute '%s': %s", name, qs_sim_h5_detail(d));
        if (a >= 0)
            H5Aclose(a);
        return H5I_INVALID_HID;
    }
    return a;
}

/* A scalar integer attribute in [lo, hi]. */
static int r_int(const rd_t *r, hid_t obj, const char *name, int64_t lo, int64_t hi, int64_t *v)
{
    hssize_t n;
    H5T_class_t cls;
    int rc;
    hid_t a = r_attr(r, obj, name, true, &n, &cls, &rc);
    if (a < 0)
        return rc;
    if (cls != H5T_INTEGER)
        rc = rbad(r, QS_ERR_FORMAT, "attribute '%s' is not an integer", name);
    else if (n != 1)
        rc = rbad(r, QS_ERR_FORMAT, "attribute '%s' holds %lld values, expected one", name, (long long)n);
    else if (H5Aread(a, H5T_NATIVE_INT64, v) < 0)
        rc = rbad(r, QS_ERR_FORMAT, "cannot read attribute '%s'", name);
    else if (*v < lo || *v > hi)
        rc = rbad(r, QS_ERR_FORMAT, "attribute '%s' is %lld, expected %lld..%lld", name, (long long)*v, (long long)lo,
                  (long long)hi);
    H5Aclose(a);
    return rc;
}

static int r_flag(const rd_t *r, hid_t obj, const char *name, bool *v)
{
    int64_t x;
    int rc = r_int(r, obj, name, 0, 1, &x);
    if (rc >= 0)
        *v = x != 0;
    return rc;
}

static int r_u64(const rd_t *r, hid_t obj, const char *name, uint64_t *v)
{
    hssize_t n;
    H5T_class_t cls;
    int rc;
    hid_t a = r_attr(r, obj, name, true, &n, &cls, &rc);
    if (a < 0)
        return rc;
    hid_t t = H5Aget_type(a);
    bool neg = t >= 0 && H5Tget_sign(t) == H5T_SGN_2;
    if (t >= 0)
        H5Tclose(t);
    int64_t s = 0;
    if (cls != H5T_INTEGER)
        rc = rbad(r, QS_ERR_FORMAT, "attribute '%s' is not an integer", name);
    else if (n != 1)
        rc = rbad(r, QS_ERR_FORMAT, "attribute '%s' holds %lld values, expected one", name, (long long)n);
    else if (neg ? H5Aread(a, H5T_NATIVE_INT64, &s) < 0 : H5Aread(a, H5T_NATIVE_UINT64, v) < 0)
        rc = rbad(r, QS_ERR_FORMAT, "cannot read attribute '%s'", name);
    else if (neg && s < 0)
        rc = rbad(r, QS_ERR_FORMAT, "attribute '%s' is %lld; it must not be negative", name, (long long)s);
    else if (neg)
        *v = (uint64_t)s;
    H5Aclose(a);
    return rc;
}

/* A scalar number, finite and not negative (the statistics). */
static int r_double(const rd_t *r, hid_t obj, const char *name, double *v)
{
    hssize_t n;
    H5T_class_t cls;
    int rc;
    hid_t a = r_attr(r, obj, name, true, &n, &cls, &rc);
    if (a < 0)
        return rc;
    if (cls != H5T_FLOAT && cls != H5T_INTEGER)
        rc = rbad(r, QS_ERR_FORMAT, "attribute '%s' is not a number", name);
    else if (n != 1)
        rc = rbad(r, QS_ERR_FORMAT, "attribute '%s' holds %lld values, expected one", name, (long long)n);
    else if (H5Aread(a, H5T_NATIVE_DOUBLE, v) < 0)
        rc = rbad(r, QS_ERR_FORMAT, "cannot read attribute '%s'", name);
    else if (!(*v >= 0.0) || !isfinite(*v))
        rc = rbad(r, QS_ERR_FORMAT, "attribute '%s' is %g; it must be finite and not negative", name, *v);
    H5Aclose(a);
    return rc;
}

static void free_strs(char **v, int n)
{
    for (int k = 0; v && k < n; k++)
        free(v[k]);
    free(v);
}

/* A string attribute of n strings (n 0: one, scalar or [1]), variable or
 * fixed length, into malloc'ed strings *out[0..max(n,1)). */
static int r_strs(const rd_t *r, hid_t obj, const char *name, bool required, int n, char ***out)
{
    *out = NULL;
    hssize_t count;
    H5T_class_t cls;
    int rc;
    hid_t a = r_attr(r, obj, name, required, &count, &cls, &rc);
    if (a < 0)
        return rc;
    const int want = n ? n : 1;
    hid_t ft = H5Aget_type(a), mem = H5I_INVALID_HID;
    char **v = NULL;
    if (cls != H5T_STRING) {
        rc = rbad(r, QS_ERR_FORMAT, "attribute '%s' is not a string", name);
        goto done;
    }
    if (count != want) {
        rc = rbad(r, QS_ERR_FORMAT, "attribute '%s' holds %lld strings, expected %d", name, (long long)count, want);
        goto done;
    }
    if (!(v = calloc((size_t)want, sizeof *v))) {
        rc = qs_error(QS_ERR_NOMEM, "'%s': out of memory reading attribute '%s'", r->path, name);
        goto done;
    }
    mem = H5Tcopy(ft);
    if (H5Tis_variable_str(ft) > 0) {
        char **raw = calloc((size_t)want, sizeof *raw);
        if (!raw || mem < 0 || H5Aread(a, mem, raw) < 0) {
            free(raw);
            rc = rbad(r, QS_ERR_FORMAT, "cannot read attribute '%s'", name);
            goto done;
        }
        for (int k = 0; k < want; k++) {
            if (!(v[k] = strdup(raw[k] ? raw[k] : "")))
                rc = qs_error(QS_ERR_NOMEM, "'%s': out of memory reading attribute '%s'", r->path, name);
            if (raw[k])
                H5free_memory(raw[k]);
        }
        free(raw);
    } else {
        size_t size = H5Tget_size(ft);
        char *buf = calloc((size_t)want, size + 1);
        if (!buf || mem < 0 || H5Aread(a, mem, buf) < 0) {
            free(buf);
            rc = rbad(r, QS_ERR_FORMAT, "cannot read attribute '%s'", name);
            goto done;
        }
        bool space = H5Tget_strpad(ft) == H5T_STR_SPACEPAD;
        for (int k = 0; k < want && rc >= 0; k++) {
            char *one = malloc(size + 1);
            if (!one) {
                rc = qs_error(QS_ERR_NOMEM, "'%s': out of memory reading attribute '%s'", r->path, name);
                break;
            }
            memcpy(one, buf + (size_t)k * size, size);
            one[size] = '\0';
            for (size_t e = strlen(one); space && e > 0 && one[e - 1] == ' '; e--)
                one[e - 1] = '\0';
            v[k] = one;
        }
        free(buf);
    }
done:
    if (rc < 0) {
        free_strs(v, want);
        v = NULL;
    }
    *out = v;
    if (mem >= 0)
        H5Tclose(mem);
    if (ft >= 0)
        H5Tclose(ft);
    H5Aclose(a);
    return rc;
}

static int r_str(const rd_t *r, hid_t obj, const char *name, bool required, char **out)
{
    char **v;
    *out = NULL;
    int rc = r_strs(r, obj, name, required, 0, &v);
    if (rc >= 0 && v) {
        *out = v[0];
        free(v);
    }
    return rc;
}

/* Dataset name of grp as float32 (float or integer on disk) or, when
 * integer, as int64 (integer on disk only): *data is malloc'ed. */
static int r_dset(const rd_t *r, hid_t grp, const char *name, bool integer, int *ndim, int64_t *shape, void **data)
{
    *data = NULL;
    if (member_type(grp, name) != H5I_DATASET)
        return rbad(r, QS_ERR_FORMAT, "dataset '%s' is missing", name);
    hid_t ds = H5Dopen2(grp, name, H5P_DEFAULT);
    if (ds < 0) {
        char d[200];
        return rbad(r, QS_ERR_FORMAT, "cannot open dataset '%s': %s", name, qs_sim_h5_detail(d));
    }
    int rc = QS_OK;
    hid_t space = H5Dget_space(ds), type = H5Dget_type(ds);
    H5T_class_t cls = type >= 0 ? H5Tget_class(type) : H5T_NO_CLASS;
    int nd = space >= 0 ? H5Sget_simple_extent_ndims(space) : -1;
    hsize_t dims[QS_MAX_DIMS];
    if (integer ? cls != H5T_INTEGER : cls != H5T_FLOAT && cls != H5T_INTEGER) {
        rc = rbad(r, QS_ERR_FORMAT, "dataset '%s' does not hold %s", name, integer ? "integers" : "numbers");
        goto done;
    }
    if (nd < 1 || nd > QS_MAX_DIMS) {
        rc = rbad(r, QS_ERR_FORMAT, "dataset '%s' has rank %d, expected 1..%d", name, nd, QS_MAX_DIMS);
        goto done;
    }
    H5Sget_simple_extent_dims(space, dims, NULL);
    int64_t count = 1;
    for (int k = 0; k < nd; k++) {
        shape[k] = (int64_t)dims[k];
        if (shape[k] > (INT64_C(1) << 40) / (count ? count : 1)) {
            rc = rbad(r, QS_ERR_FORMAT, "dataset '%s' is too large", name);
            goto done;
        }
        count *= shape[k];
    }
    *ndim = nd;
    size_t size = integer ? sizeof(int64_t) : sizeof(float);
    if (!(*data = malloc((size_t)(count ? count : 1) * size))) {
        rc = qs_error(QS_ERR_NOMEM, "'%s': %s: out of memory for dataset '%s' (%lld values)", r->path, r->where, name,
                      (long long)count);
        goto done;
    }
    if (count > 0 &&
        H5Dread(ds, integer ? H5T_NATIVE_INT64 : H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, *data) < 0) {
        char d[200];
        rc = rbad(r, QS_ERR_FORMAT, "cannot read dataset '%s' (corrupt file?): %s", name, qs_sim_h5_detail(d));
    }
done:
    if (rc < 0) {
        free(*data);
        *data = NULL;
    }
    if (type >= 0)
        H5Tclose(type);
    if (space >= 0)
        H5Sclose(space);
    H5Dclose(ds);
    return rc;
}

/* int64 values that must fit int32 (codes, zero points) into dst. */
static int narrow(const rd_t *r, const char *name, const int64_t *src, int64_t n, int32_t *dst)
{
    for (int64_t k = 0; k < n; k++) {
        if (src[k] < INT32_MIN || src[k] > INT32_MAX)
            return rbad(r, QS_ERR_FORMAT, "%s[%lld] is %lld, outside the int32 range", name, (long long)k,
                        (long long)src[k]);
        dst[k] = (int32_t)src[k];
    }
    return QS_OK;
}

/* An integer dataset as an I32 tensor of its shape. */
static int r_i32(const rd_t *r, hid_t grp, const char *name, qs_tensor_t **out)
{
    *out = NULL;
    int nd;
    int64_t shape[QS_MAX_DIMS];
    void *raw;
    int rc = r_dset(r, grp, name, true, &nd, shape, &raw);
    if (rc < 0)
        return rc;
    if (!(*out = qs_tensor_create(QS_I32, nd, shape)))
        rc = qs_error_context("'%s': %s: dataset '%s': ", r->path, r->where, name);
    else if ((rc = narrow(r, name, raw, (*out)->size, qs_i32(*out))) < 0) {
        qs_tensor_free(*out);
        *out = NULL;
    }
    free(raw);
    return rc;
}

/* Datasets scale and zero_point of one shape, as parameters. */
static int r_params(const rd_t *r, hid_t grp, qs_qparams_t **out)
{
    *out = NULL;
    int nd, nz;
    int64_t shape[QS_MAX_DIMS], zshape[QS_MAX_DIMS];
    void *s = NULL, *z = NULL;
    int rc = r_dset(r, grp, "scale", false, &nd, shape, &s);
    if (rc >= 0)
        rc = r_dset(r, grp, "zero_point", true, &nz, zshape, &z);
    if (rc < 0)
        goto done;
    char a[96], b[96];
    bool same = nd == nz;
    for (int k = 0; same && k < nd; k++)
        same = shape[k] == zshape[k];
    if (!same) {
        rc = rbad(r, QS_ERR_FORMAT, "scale has shape %s but zero_point has shape %s", qs_shape_str(nd, shape, a, sizeof a),
                  qs_shape_str(nz, zshape, b, sizeof b));
        goto done;
    }
    qs_qparams_t *p = calloc(1, sizeof *p);
    if (!p) {
        rc = qs_error(QS_ERR_NOMEM, "'%s': out of memory", r->path);
        goto done;
    }
    p->ndim = nd;
    p->count = 1;
    for (int k = 0; k < nd; k++) {
        p->shape[k] = shape[k];
        p->count *= shape[k];
    }
    p->scale = s;
    s = NULL;
    p->zero_point = malloc((size_t)(p->count ? p->count : 1) * sizeof *p->zero_point);
    if (!p->zero_point) {
        qs_qparams_free(p);
        rc = qs_error(QS_ERR_NOMEM, "'%s': out of memory", r->path);
        goto done;
    }
    if ((rc = narrow(r, "zero_point", z, p->count, p->zero_point)) < 0) {
        qs_qparams_free(p);
        goto done;
    }
    if (member_type(grp, "levels") != H5I_BADID) {
        int ln;
        int64_t lshape[QS_MAX_DIMS];
        void *lv = NULL;
        if ((rc = r_dset(r, grp, "levels", false, &ln, lshape, &lv)) < 0) {
            qs_qparams_free(p);
            goto done;
        }
        if (ln != 2 || lshape[0] != p->count || lshape[1] < 1 || lshape[1] > 256) {
            free(lv);
            qs_qparams_free(p);
            rc = rbad(r, QS_ERR_FORMAT, "levels has shape %s, expected [%lld, L] (L levels per slice, 1..256)",
                      qs_shape_str(ln, lshape, a, sizeof a), (long long)p->count);
            goto done;
        }
        p->nlevels = (int)lshape[1];
        p->levels = lv;
    }
    *out = p;
done:
    free(s);
    free(z);
    return rc;
}

/* Every member of grp must be one of the datasets (and groups) named; every
 * attribute one of attrs: a file of a later version never loads half-understood. */
typedef struct {
    const rd_t *r;
    const char *const *names;
    int rc;
} name_walk_t;

static herr_t check_attr_name(hid_t loc, const char *name, const H5A_info_t *info, void *data)
{
    (void)loc;
    (void)info;
    name_walk_t *w = data;
    for (int k = 0; w->names[k]; k++)
        if (strcmp(name, w->names[k]) == 0)
            return 0;
    w->rc = rbad(w->r, QS_ERR_FORMAT, "unexpected attribute '%s'", name);
    return 1;
}

static int check_members(const rd_t *r, hid_t grp, const char *const *attrs, const char *const *dsets,
                         const char *const *groups)
{
    name_walk_t w = {r, attrs, QS_OK};
    hsize_t idx = 0;
    if (H5Aiterate2(grp, H5_INDEX_NAME, H5_ITER_INC, &idx, check_attr_name, &w) < 0 && w.rc == QS_OK) {
        char d[200];
        return rbad(r, QS_ERR_FORMAT, "cannot list the attributes: %s", qs_sim_h5_detail(d));
    }
    if (w.rc < 0)
        return w.rc;
    H5G_info_t info;
    if (H5Gget_info(grp, &info) < 0) {
        char d[200];
        return rbad(r, QS_ERR_FORMAT, "cannot list the group: %s", qs_sim_h5_detail(d));
    }
    for (hsize_t m = 0; m < info.nlinks; m++) {
        char name[256];
        if (H5Lget_name_by_idx(grp, ".", H5_INDEX_NAME, H5_ITER_INC, m, name, sizeof name, H5P_DEFAULT) < 0)
            return rbad(r, QS_ERR_FORMAT, "cannot list the group");
        H5I_type_t t = member_type(grp, name);
        const char *const *list = t == H5I_DATASET ? dsets : t == H5I_GROUP ? groups : NULL;
        bool known = false;
        for (int k = 0; list && list[k] && !known; k++)
            known = strcmp(name, list[k]) == 0;
        if (!known)
            return rbad(r, QS_ERR_FORMAT, "unexpected %s '%s'",
                        t == H5I_GROUP ? "group" : t == H5I_DATASET ? "dataset" : "object", name);
    }
    return QS_OK;
}

/* A spec string parsed on top of the default quantizer. */
static int r_spec(const rd_t *r, hid_t grp, const char *name, qs_quantizer_t *q)
{
    char *s = NULL;
    int rc = r_str(r, grp, name, true, &s);
    if (rc < 0)
        return rc;
    char what[QS_ERROR_MAX];
    snprintf(what, sizeof what, "'%s': %s: attribute '%s'", r->path, r->where, name);
    qs_quantizer_default(q);
    if ((rc = qs_quantizer_parse(s, what, q)) >= 0 && (rc = qs_quantizer_validate(q)) < 0)
        rc = qs_error_context("%s: ", what);
    if (rc < 0)
        rc = recode(QS_ERR_FORMAT);
    free(s);
    return rc;
}

typedef struct {
    qs_qnet_t *q;
    int version;
    int n; /* layers allocated */
} loader_t;

static int resolve_layer(const qs_graph_t *g, const char *name)
{
    if (strcmp(name, "first") == 0)
        return qs_qnet_first_layer(g);
    if (strcmp(name, "last") == 0)
        return qs_qnet_last_layer(g);
    return qs_graph_find(g, name);
}

static int read_root(rd_t *r, hid_t file, qs_qnet_t *q)
{
    static const char *const attrs[] = {"weights", "acts", "bias", "weights_on", "acts_on", "bias_on",
                                        "override_count", "override_layer", "override_target", "override_spec",
                                        "folded_batchnorms", "calibrated", "calib_data", "calib_images",
                                        "calib_batch", "calib_seed", "quasar_version", NULL};
    static const char *const none[] = {NULL};
    static const char *const on_names[QS_QT_COUNT] = {"weights_on", "acts_on", "bias_on"};
    snprintf(r->where, sizeof r->where, "/quant");
    hid_t grp = H5Gopen2(file, "quant", H5P_DEFAULT);
    if (grp < 0) {
        char d[200];
        return rbad(r, QS_ERR_FORMAT, "cannot open the group: %s", qs_sim_h5_detail(d));
    }
    qs_qconfig_t *c = &q->cfg;
    char **layer = NULL, **target = NULL, **spec = NULL, *s = NULL;
    int64_t v;
    int rc = check_members(r, grp, attrs, none, none);
    for (int t = 0; t < QS_QT_COUNT && rc >= 0; t++)
        if ((rc = r_spec(r, grp, qs_qtarget_name((qs_qtarget_t)t), &c->q[t])) >= 0)
            rc = r_flag(r, grp, on_names[t], &c->on[t]);
    if (rc < 0 || (rc = r_int(r, grp, "override_count", 0, QS_QCONFIG_MAX_OVERRIDES, &v)) < 0)
        goto done;
    c->noverrides = (int)v;
    if (c->noverrides > 0 && ((rc = r_strs(r, grp, "override_layer", true, c->noverrides, &layer)) < 0 ||
                              (rc = r_strs(r, grp, "override_target", true, c->noverrides, &target)) < 0 ||
                              (rc = r_strs(r, grp, "override_spec", true, c->noverrides, &spec)) < 0))
        goto done;
    if (c->noverrides == 0 && (H5Aexists(grp, "override_layer") > 0 || H5Aexists(grp, "override_target") > 0 ||
                               H5Aexists(grp, "override_spec") > 0)) {
        rc = rbad(r, QS_ERR_FORMAT, "override_count is 0 but override_layer, override_target or override_spec is present");
        goto done;
    }
    for (int k = 0; k < c->noverrides; k++) {
        qs_qoverride_t *o = &c->ov[k];
        int t = 0;
        while (t < QS_QT_COUNT && strcmp(target[k], qs_qtarget_name((qs_qtarget_t)t)) != 0)
            t++;
        if (t == QS_QT_COUNT) {
            rc = rbad(r, QS_ERR_FORMAT, "override %d: target '%s' is not weights, acts or bias", k, target[k]);
            goto done;
        }
        if (strlen(layer[k]) == 0 || strlen(layer[k]) >= sizeof o->layer || strlen(spec[k]) >= sizeof o->spec) {
            rc = rbad(r, QS_ERR_FORMAT, "override %d: the layer name (1..%d characters) or the spec (at most %d) is "
                      "too long or empty", k, QS_NAME_MAX - 1, QS_QSPEC_MAX - 1);
            goto done;
        }
        o->what = (qs_qtarget_t)t;
        o->on = strcmp(spec[k], "float") != 0;
        snprintf(o->layer, sizeof o->layer, "%s", layer[k]);
        snprintf(o->spec, sizeof o->spec, "%s", o->on ? spec[k] : "");
    }
    if ((rc = r_int(r, grp, "folded_batchnorms", 0, INT32_MAX, &v)) < 0)
        goto done;
    q->folded = (int)v;
    if ((rc = r_flag(r, grp, "calibrated", &q->calibrated)) < 0 || (rc = r_str(r, grp, "calib_data", true, &s)) < 0)
        goto done;
    if (strlen(s) >= sizeof q->calib.source) {
        rc = rbad(r, QS_ERR_FORMAT, "calib_data is longer than %zu characters", sizeof q->calib.source - 1);
        goto done;
    }
    snprintf(q->calib.source, sizeof q->calib.source, "%s", s);
    if ((rc = r_int(r, grp, "calib_images", 0, INT64_MAX, &q->calib.images)) < 0 ||
        (rc = r_int(r, grp, "calib_batch", 0, INT64_MAX, &q->calib.batch)) < 0 ||
        (rc = r_u64(r, grp, "calib_seed", &q->calib.seed)) < 0)
        goto done;
    free(s);
    s = NULL;
    rc = r_str(r, grp, "quasar_version", false, &s); /* provenance only: optional */
done:
    free(s);
    free_strs(layer, c->noverrides);
    free_strs(target, c->noverrides);
    free_strs(spec, c->noverrides);
    H5Gclose(grp);
    return rc;
}

/* The quantizers qs_qnet_create gives every node from the configuration
 * (the network-wide ones, then each override in order): the values of the
 * quantizers a file does not store, which are never used but make a loaded
 * network identical to the one saved. */
static int replay(rd_t *r, const qs_graph_t *g, qs_qnet_t *q)
{
    const qs_qconfig_t *c = &q->cfg;
    qs_qlayer_t *L = q->layer;
    for (int i = 0; i < g->nnodes; i++) {
        L[i].wquant = c->q[QS_QT_WEIGHTS];
        L[i].bquant = c->q[QS_QT_BIAS];
        L[i].aquant = c->q[QS_QT_ACTS];
    }
    snprintf(r->where, sizeof r->where, "/quant");
    for (int k = 0; k < c->noverrides; k++) {
        const qs_qoverride_t *o = &c->ov[k];
        int i = resolve_layer(g, o->layer);
        if (i < 0)
            return rbad(r, QS_ERR_FORMAT, "override %d names layer '%s', which is not a node of the model", k, o->layer);
        const qs_node_t *nd = &g->nodes[i];
        qs_quantizer_t *dst;
        if (o->what == QS_QT_ACTS) {
            int p = L[i].point;
            if (p < 0 || L[p].ashare >= 0)
                return rbad(r, QS_ERR_FORMAT, "override %d: node '%s' has no activation quantization point of its own",
                            k, nd->name);
            dst = &L[p].aquant;
        } else {
            if (!has_weights(nd->op))
                return rbad(r, QS_ERR_FORMAT, "override %d: node '%s' (%s) has no weights", k, nd->name,
                            qs_op_name(nd->op));
            dst = o->what == QS_QT_WEIGHTS ? &L[i].wquant : &L[i].bquant;
        }
        if (!o->on)
            continue;
        char what[QS_NAME_MAX + 120];
        snprintf(what, sizeof what, "'%s': /quant: override %d (%s %s)", r->path, k, o->layer, qs_qtarget_name(o->what));
        int rc = qs_quantizer_parse(o->spec, what, dst);
        if (rc < 0)
            return recode(QS_ERR_FORMAT);
    }
    for (int i = 0; i < g->nnodes; i++) {
        L[i].wquant.round.stream = 2 * (uint64_t)i;
        L[i].bquant.round.stream = 2 * (uint64_t)i + 1;
    }
    return QS_OK;
}

/* The file's quantizer, unless it is the same as the replayed one (same
 * canonical string): then the replayed struct, bit for bit. */
static void take_quantizer(qs_quantizer_t *dst, const qs_quantizer_t *from_file)
{
    if (!same_quantizer(dst, from_file)) {
        uint64_t stream = dst->round.stream;
        *dst = *from_file;
        dst->round.stream = stream;
    }
}

static int read_part(rd_t *r, hid_t qg, const char *base, const char *part, hid_t *grp)
{
    snprintf(r->where + strlen(base), sizeof r->where - strlen(base), "/%s)", part);
    *grp = H5Gopen2(qg, part, H5P_DEFAULT);
    if (*grp < 0) {
        char d[200];
        return rbad(r, QS_ERR_FORMAT, "cannot open the group: %s", qs_sim_h5_detail(d));
    }
    return QS_OK;
}

static int read_node(rd_t *r, hid_t file, const qs_graph_t *g, qs_qnet_t *q, int i)
{
    static const char *const none[] = {NULL};
    static const char *const parts[] = {"weights", "bias", "acts", NULL};
    static const char *const w_attrs[] = {"spec", "stats_count", "stats_clipped", "stats_nonfinite", "stats_sse",
                                          "stats_signal", "stats_max_abs_err", NULL};
    static const char *const w_dsets[] = {"scale", "zero_point", "codes", "levels", NULL};
    static const char *const b_attrs[] = {"spec", NULL};
    static const char *const b_dsets[] = {"codes", "scale", NULL};
    static const char *const a_attrs[] = {"spec", "shares", NULL};
    static const char *const a_dsets[] = {"scale", "zero_point", "levels", NULL};
    qs_qlayer_t *l = &q->layer[i];
    const qs_node_t *nd = &g->nodes[i];
    /* qs_qnet_calibrate gives a shared point its source's quantizer (an
     * earlier node, already read) */
    if (q->calibrated && l->ashare >= 0 && l->point == i)
        l->aquant = q->layer[l->ashare].aquant;
    char path[QS_NAME_MAX + 40];
    node_group(g, i, path, sizeof path);
    strcat(path, "/quant");
    if (member_type(file, path) == H5I_BADID)
        return QS_OK; /* nothing quantized at this node */
    snprintf(r->where, sizeof r->where, "node '%s' (%s", nd->name, path);
    char base[sizeof r->where];
    snprintf(base, sizeof base, "%s", r->where);
    strcat(r->where, ")");
    if (member_type(file, path) != H5I_GROUP)
        return rbad(r, QS_ERR_FORMAT, "quant is not a group");
    hid_t qg = H5Gopen2(file, path, H5P_DEFAULT), grp = H5I_INVALID_HID;
    if (qg < 0) {
        char d[200];
        return rbad(r, QS_ERR_FORMAT, "cannot open the group: %s", qs_sim_h5_detail(d));
    }
    int rc = check_members(r, qg, none, none, parts);
    qs_quantizer_t fq;
    if (rc >= 0 && member_type(qg, "weights") == H5I_GROUP && (rc = read_part(r, qg, base, "weights", &grp)) >= 0) {
        qs_qstats_t *st = &l->wstats;
        l->wq = true;
        if ((rc = check_members(r, grp, w_attrs, w_dsets, none)) >= 0 && (rc = r_spec(r, grp, "spec", &fq)) >= 0 &&
            (rc = r_int(r, grp, "stats_count", 0, INT64_MAX, &st->count)) >= 0 &&
            (rc = r_int(r, grp, "stats_clipped", 0, INT64_MAX, &st->clipped)) >= 0 &&
            (rc = r_int(r, grp, "stats_nonfinite", 0, INT64_MAX, &st->nonfinite)) >= 0 &&
            (rc = r_double(r, grp, "stats_sse", &st->sse)) >= 0 &&
            (rc = r_double(r, grp, "stats_signal", &st->signal)) >= 0 &&
            (rc = r_double(r, grp, "stats_max_abs_err", &st->max_abs_err)) >= 0 &&
            (rc = r_params(r, grp, &l->wp)) >= 0)
            rc = r_i32(r, grp, "codes", &l->wcodes);
        if (rc >= 0)
            take_quantizer(&l->wquant, &fq);
        H5Gclose(grp);
    }
    if (rc >= 0 && member_type(qg, "bias") == H5I_GROUP && (rc = read_part(r, qg, base, "bias", &grp)) >= 0) {
        l->bq = true;
        if ((rc = check_members(r, grp, b_attrs, b_dsets, none)) >= 0 && (rc = r_spec(r, grp, "spec", &fq)) >= 0) {
            take_quantizer(&l->bquant, &fq);
            bool codes = member_type(grp, "codes") != H5I_BADID, scale = member_type(grp, "scale") != H5I_BADID;
            if (codes != scale)
                rc = rbad(r, QS_ERR_FORMAT, "dataset '%s' is missing (a quantized bias has codes and scale)",
                          codes ? "scale" : "codes");
            else if (codes && (rc = r_i32(r, grp, "codes", &l->bcodes)) >= 0) {
                int nd1;
                int64_t shape[QS_MAX_DIMS];
                void *s = NULL;
                if ((rc = r_dset(r, grp, "scale", false, &nd1, shape, &s)) >= 0) {
                    if (!(l->bscale = qs_tensor_create(QS_F32, nd1, shape)))
                        rc = qs_error_context("'%s': %s: ", r->path, r->where);
                    else
                        memcpy(l->bscale->data, s, (size_t)l->bscale->size * sizeof(float));
                }
                free(s);
            }
        }
        H5Gclose(grp);
    }
    if (rc >= 0 && member_type(qg, "acts") == H5I_GROUP && (rc = read_part(r, qg, base, "acts", &grp)) >= 0) {
        char *shares = NULL;
        l->aq = true;
        if ((rc = check_members(r, grp, a_attrs, a_dsets, none)) >= 0 && (rc = r_spec(r, grp, "spec", &fq)) >= 0 &&
            (rc = r_str(r, grp, "shares", false, &shares)) >= 0) {
            take_quantizer(&l->aquant, &fq);
            if (shares && (l->ashare < 0 || strcmp(shares, g->nodes[l->ashare].name) != 0))
                rc = l->ashare < 0 ? rbad(r, QS_ERR_FORMAT, "shares is '%s', but this %s keeps no other node's grid", shares,
                                          qs_op_name(nd->op))
                                   : rbad(r, QS_ERR_FORMAT, "shares is '%s', but this %s keeps the grid of node '%s'",
                                          shares, qs_op_name(nd->op), g->nodes[l->ashare].name);
            else if (!shares && l->ashare >= 0)
                rc = rbad(r, QS_ERR_FORMAT, "attribute 'shares' is missing (this %s keeps the grid of node '%s')",
                          qs_op_name(nd->op), g->nodes[l->ashare].name);
            bool sc = member_type(grp, "scale") != H5I_BADID, zp = member_type(grp, "zero_point") != H5I_BADID;
            if (rc >= 0 && (sc || zp))
                rc = r_params(r, grp, &l->ap);
        }
        free(shares);
        H5Gclose(grp);
    }
    H5Gclose(qg);
    return rc;
}

static void free_layers(qs_qlayer_t *L, int n)
{
    for (int i = 0; L && i < n; i++) {
        qs_qparams_free(L[i].wp);
        qs_tensor_free(L[i].wcodes);
        qs_tensor_free(L[i].bcodes);
        qs_tensor_free(L[i].bscale);
        qs_qparams_free(L[i].ap);
    }
    free(L);
}

static int load_extra(void *ctx, hid_t file, const char *path, const qs_graph_t *g)
{
    loader_t *ld = ctx;
    qs_qnet_t *q = ld->q;
    if (ld->version < QS_QMODEL_VERSION || member_type(file, "quant") != H5I_GROUP)
        return qs_error(QS_ERR_FORMAT, "'%s' is a float model, not a quantized one (make one with quasar quantize-model)",
                        path);
    if (!(q->layer = calloc((size_t)g->nnodes, sizeof *q->layer)))
        return qs_error(QS_ERR_NOMEM, "out of memory reading '%s'", path);
    ld->n = g->nnodes;
    qs_sim_find_points(g, q->layer);
    rd_t r = {path, ""};
    int rc = read_root(&r, file, q);
    if (rc >= 0)
        rc = replay(&r, g, q);
    for (int i = 0; i < g->nnodes && rc >= 0; i++)
        rc = read_node(&r, file, g, q, i);
    return rc;
}

int qs_qnet_load(const char *path, qs_qnet_t **out)
{
    if (out)
        *out = NULL;
    if (!path || !*path || !out)
        return qs_error(QS_ERR_INVALID, "qs_qnet_load: no file name or no output");
    qs_qnet_t *q = calloc(1, sizeof *q);
    if (!q)
        return qs_error(QS_ERR_NOMEM, "out of memory reading '%s'", path);
    loader_t ld = {q, 0, 0};
    qs_graph_t *g = NULL;
    int rc = qs_sim_model_read(path, &g, &ld.version, load_extra, &ld);
    if (rc < 0) {
        free_layers(q->layer, ld.n);
        free(q);
        return rc;
    }
    q->g = g;
    vctx_t v = {path, false};
    if ((rc = validate(q, &v)) < 0) {
        qs_qnet_free(q);
        return rc;
    }
    *out = q;
    return QS_OK;
}

int qs_model_is_quantized(const char *path)
{
    if (!path || !*path)
        return qs_error(QS_ERR_INVALID, "qs_model_is_quantized: no file name");
    int version = 0;
    bool quant = false;
    int rc = qs_sim_model_probe(path, &version, &quant);
    if (rc < 0)
        return rc;
    return version >= QS_QMODEL_VERSION && quant ? 1 : 0;
}

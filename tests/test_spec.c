/* tests/test_spec.c — the quantizer spec grammar (quant/spec.c): every key
 * and value, the shorthands, the error messages, and parse(str(q)) == q. */
#include "quant/quant.h"

#include <math.h>
#include <string.h>
#include "tests/testutil.h"

static const char *const DEFAULT_STR = "grid=uniform,bits=8,scheme=symmetric,gran=tensor,range=minmax,"
                                       "round=nearest-even,overflow=saturate,scale=float,div=divide";

static bool same_quantizer(const qs_quantizer_t *a, const qs_quantizer_t *b)
{
    return a->grid == b->grid && a->bits == b->bits && a->scheme == b->scheme && a->gran.kind == b->gran.kind &&
           a->gran.axis == b->gran.axis && a->gran.group == b->gran.group && a->range.method == b->range.method &&
           a->range.percentile == b->range.percentile && a->range.dist == b->range.dist &&
           a->round.mode == b->round.mode && a->round.seed == b->round.seed && a->round.rbits == b->round.rbits &&
           a->round.stream == b->round.stream && a->overflow == b->overflow && a->scale_type == b->scale_type &&
           a->div == b->div;
}

/* Parses spec on top of the defaults and returns the canonical string. */
static const char *canon(const char *spec)
{
    static char buf[512];
    qs_quantizer_t q;
    qs_quantizer_default(&q);
    int rc = qs_quantizer_parse(spec, "--quant", &q);
    ck_assert_msg(rc == QS_OK, "'%s' failed: %s", spec, qs_last_error());
    return qs_quantizer_str(&q, buf, sizeof buf);
}

/* Expects spec to fail with a message containing every substring given. */
static void expect_error(const char *spec, const char *sub1, const char *sub2)
{
    qs_quantizer_t q, before;
    qs_quantizer_default(&q);
    q.bits = 5; /* a non-default field: a failed parse must leave q as it was */
    before = q;
    qs_clear_error();
    int rc = qs_quantizer_parse(spec, "--quant", &q);
    ck_assert_msg(rc < 0, "'%s' should fail", spec);
    ck_assert_int_eq(rc, qs_last_status());
    const char *msg = qs_last_error();
    ck_assert_msg(strstr(msg, sub1), "'%s': message '%s' lacks '%s'", spec, msg, sub1);
    if (sub2)
        ck_assert_msg(strstr(msg, sub2), "'%s': message '%s' lacks '%s'", spec, msg, sub2);
    ck_assert_msg(same_quantizer(&q, &before), "'%s': a failed parse changed the quantizer", spec);
}

START_TEST(test_defaults)
{
    ck_assert_str_eq(canon(""), DEFAULT_STR);
    ck_assert_str_eq(canon("  "), DEFAULT_STR);
    ck_assert_str_eq(canon(DEFAULT_STR), DEFAULT_STR);
    ck_assert_str_eq(canon(NULL), DEFAULT_STR);
    const char *const *k = qs_quantizer_keys();
    const char *expect[] = {"grid", "bits", "scheme", "gran", "range", "round", "overflow", "scale", "div", "block"};
    for (size_t i = 0; i < sizeof expect / sizeof *expect; i++)
        ck_assert_str_eq(k[i], expect[i]);
    ck_assert_ptr_null(k[10]);
}
END_TEST

/* Each word on its own, and the canonical string it gives. */
static const struct {
    const char *spec, *canonical;
} words[] = {
    {"grid=uniform", "grid=uniform,bits=8,scheme=symmetric,gran=tensor,range=minmax,round=nearest-even,overflow=saturate,scale=float,div=divide"},
    {"bits=1", "grid=uniform,bits=1,scheme=symmetric,gran=tensor,range=minmax,round=nearest-even,overflow=saturate,scale=float,div=divide"},
    {"bits=4", "grid=uniform,bits=4,scheme=symmetric,gran=tensor,range=minmax,round=nearest-even,overflow=saturate,scale=float,div=divide"},
    {"bits=32", "grid=uniform,bits=32,scheme=symmetric,gran=tensor,range=minmax,round=nearest-even,overflow=saturate,scale=float,div=divide"},
    {"scheme=symmetric-narrow", "grid=uniform,bits=8,scheme=symmetric-narrow,gran=tensor,range=minmax,round=nearest-even,overflow=saturate,scale=float,div=divide"},
    {"scheme=unsigned", "grid=uniform,bits=8,scheme=unsigned,gran=tensor,range=minmax,round=nearest-even,overflow=saturate,scale=float,div=divide"},
    {"scheme=asymmetric", "grid=uniform,bits=8,scheme=asymmetric,gran=tensor,range=minmax,round=nearest-even,overflow=saturate,scale=float,div=divide"},
    {"scheme=asymmetric-signed", "grid=uniform,bits=8,scheme=asymmetric-signed,gran=tensor,range=minmax,round=nearest-even,overflow=saturate,scale=float,div=divide"},
    {"gran=tensor", "grid=uniform,bits=8,scheme=symmetric,gran=tensor,range=minmax,round=nearest-even,overflow=saturate,scale=float,div=divide"},
    {"gran=channel", "grid=uniform,bits=8,scheme=symmetric,gran=channel:0,range=minmax,round=nearest-even,overflow=saturate,scale=float,div=divide"},
    {"gran=channel:1", "grid=uniform,bits=8,scheme=symmetric,gran=channel:1,range=minmax,round=nearest-even,overflow=saturate,scale=float,div=divide"},
    {"gran=channel:-2", "grid=uniform,bits=8,scheme=symmetric,gran=channel:-2,range=minmax,round=nearest-even,overflow=saturate,scale=float,div=divide"},
    {"gran=group:32", "grid=uniform,bits=8,scheme=symmetric,gran=group:-1:32,range=minmax,round=nearest-even,overflow=saturate,scale=float,div=divide"},
    {"gran=group:1:16", "grid=uniform,bits=8,scheme=symmetric,gran=group:1:16,range=minmax,round=nearest-even,overflow=saturate,scale=float,div=divide"},
    {"gran=group:-3:1", "grid=uniform,bits=8,scheme=symmetric,gran=group:-3:1,range=minmax,round=nearest-even,overflow=saturate,scale=float,div=divide"},
    {"range=percentile", "grid=uniform,bits=8,scheme=symmetric,gran=tensor,range=percentile:99.99,round=nearest-even,overflow=saturate,scale=float,div=divide"},
    {"range=percentile:99.9", "grid=uniform,bits=8,scheme=symmetric,gran=tensor,range=percentile:99.9,round=nearest-even,overflow=saturate,scale=float,div=divide"},
    {"range=percentile:100", "grid=uniform,bits=8,scheme=symmetric,gran=tensor,range=percentile:100,round=nearest-even,overflow=saturate,scale=float,div=divide"},
    {"range=percentile:1e-3", "grid=uniform,bits=8,scheme=symmetric,gran=tensor,range=percentile:0.001,round=nearest-even,overflow=saturate,scale=float,div=divide"},
    {"range=mse", "grid=uniform,bits=8,scheme=symmetric,gran=tensor,range=mse,round=nearest-even,overflow=saturate,scale=float,div=divide"},
    {"range=sqnr", "grid=uniform,bits=8,scheme=symmetric,gran=tensor,range=sqnr,round=nearest-even,overflow=saturate,scale=float,div=divide"},
    {"range=kl", "grid=uniform,bits=8,scheme=symmetric,gran=tensor,range=kl,round=nearest-even,overflow=saturate,scale=float,div=divide"},
    {"range=aciq", "grid=uniform,bits=8,scheme=symmetric,gran=tensor,range=aciq:laplace,round=nearest-even,overflow=saturate,scale=float,div=divide"},
    {"range=aciq:laplace", "grid=uniform,bits=8,scheme=symmetric,gran=tensor,range=aciq:laplace,round=nearest-even,overflow=saturate,scale=float,div=divide"},
    {"range=aciq:gauss", "grid=uniform,bits=8,scheme=symmetric,gran=tensor,range=aciq:gauss,round=nearest-even,overflow=saturate,scale=float,div=divide"},
    {"range=minmax", "grid=uniform,bits=8,scheme=symmetric,gran=tensor,range=minmax,round=nearest-even,overflow=saturate,scale=float,div=divide"},
    {"round=nearest-away", "grid=uniform,bits=8,scheme=symmetric,gran=tensor,range=minmax,round=nearest-away,overflow=saturate,scale=float,div=divide"},
    {"round=nearest-up", "grid=uniform,bits=8,scheme=symmetric,gran=tensor,range=minmax,round=nearest-up,overflow=saturate,scale=float,div=divide"},
    {"round=nearest-down", "grid=uniform,bits=8,scheme=symmetric,gran=tensor,range=minmax,round=nearest-down,overflow=saturate,scale=float,div=divide"},
    {"round=nearest-zero", "grid=uniform,bits=8,scheme=symmetric,gran=tensor,range=minmax,round=nearest-zero,overflow=saturate,scale=float,div=divide"},
    {"round=floor", "grid=uniform,bits=8,scheme=symmetric,gran=tensor,range=minmax,round=floor,overflow=saturate,scale=float,div=divide"},
    {"round=ceil", "grid=uniform,bits=8,scheme=symmetric,gran=tensor,range=minmax,round=ceil,overflow=saturate,scale=float,div=divide"},
    {"round=toward-zero", "grid=uniform,bits=8,scheme=symmetric,gran=tensor,range=minmax,round=toward-zero,overflow=saturate,scale=float,div=divide"},
    {"round=away-from-zero", "grid=uniform,bits=8,scheme=symmetric,gran=tensor,range=minmax,round=away-from-zero,overflow=saturate,scale=float,div=divide"},
    {"round=odd", "grid=uniform,bits=8,scheme=symmetric,gran=tensor,range=minmax,round=odd,overflow=saturate,scale=float,div=divide"},
    {"round=stochastic", "grid=uniform,bits=8,scheme=symmetric,gran=tensor,range=minmax,round=stochastic:0:32,overflow=saturate,scale=float,div=divide"},
    {"round=stochastic:42", "grid=uniform,bits=8,scheme=symmetric,gran=tensor,range=minmax,round=stochastic:42:32,overflow=saturate,scale=float,div=divide"},
    {"round=stochastic:7:8", "grid=uniform,bits=8,scheme=symmetric,gran=tensor,range=minmax,round=stochastic:7:8,overflow=saturate,scale=float,div=divide"},
    {"round=stochastic:9223372036854775807:1", "grid=uniform,bits=8,scheme=symmetric,gran=tensor,range=minmax,round=stochastic:9223372036854775807:1,overflow=saturate,scale=float,div=divide"},
    {"round=nearest-even", "grid=uniform,bits=8,scheme=symmetric,gran=tensor,range=minmax,round=nearest-even,overflow=saturate,scale=float,div=divide"},
    {"overflow=wrap", "grid=uniform,bits=8,scheme=symmetric,gran=tensor,range=minmax,round=nearest-even,overflow=wrap,scale=float,div=divide"},
    {"overflow=saturate", "grid=uniform,bits=8,scheme=symmetric,gran=tensor,range=minmax,round=nearest-even,overflow=saturate,scale=float,div=divide"},
    {"scale=pow2", "grid=uniform,bits=8,scheme=symmetric,gran=tensor,range=minmax,round=nearest-even,overflow=saturate,scale=pow2,div=divide"},
    {"scale=fp16", "grid=uniform,bits=8,scheme=symmetric,gran=tensor,range=minmax,round=nearest-even,overflow=saturate,scale=fp16,div=divide"},
    {"scale=bf16", "grid=uniform,bits=8,scheme=symmetric,gran=tensor,range=minmax,round=nearest-even,overflow=saturate,scale=bf16,div=divide"},
    {"scale=e8m0", "grid=uniform,bits=8,scheme=symmetric,gran=tensor,range=minmax,round=nearest-even,overflow=saturate,scale=e8m0,div=divide"},
    {"scale=float", "grid=uniform,bits=8,scheme=symmetric,gran=tensor,range=minmax,round=nearest-even,overflow=saturate,scale=float,div=divide"},
    {"div=reciprocal", "grid=uniform,bits=8,scheme=symmetric,gran=tensor,range=minmax,round=nearest-even,overflow=saturate,scale=float,div=reciprocal"},
    {"div=divide", "grid=uniform,bits=8,scheme=symmetric,gran=tensor,range=minmax,round=nearest-even,overflow=saturate,scale=float,div=divide"},
    /* several words, spaces, order does not matter */
    {" bits = 4 , scheme=asymmetric,gran=channel ", "grid=uniform,bits=4,scheme=asymmetric,gran=channel:0,range=minmax,round=nearest-even,overflow=saturate,scale=float,div=divide"},
    {"div=reciprocal,round=floor,bits=3,range=mse", "grid=uniform,bits=3,scheme=symmetric,gran=tensor,range=mse,round=floor,overflow=saturate,scale=float,div=reciprocal"},
    /* shorthands */
    {"int4", "grid=uniform,bits=4,scheme=symmetric,gran=tensor,range=minmax,round=nearest-even,overflow=saturate,scale=float,div=divide"},
    {"int2", "grid=uniform,bits=2,scheme=symmetric,gran=tensor,range=minmax,round=nearest-even,overflow=saturate,scale=float,div=divide"},
    {"int16", "grid=uniform,bits=16,scheme=symmetric,gran=tensor,range=minmax,round=nearest-even,overflow=saturate,scale=float,div=divide"},
    {"uint8", "grid=uniform,bits=8,scheme=unsigned,gran=tensor,range=minmax,round=nearest-even,overflow=saturate,scale=float,div=divide"},
    {"uint2", "grid=uniform,bits=2,scheme=unsigned,gran=tensor,range=minmax,round=nearest-even,overflow=saturate,scale=float,div=divide"},
    {"uint16", "grid=uniform,bits=16,scheme=unsigned,gran=tensor,range=minmax,round=nearest-even,overflow=saturate,scale=float,div=divide"},
    {"int4,gran=channel,range=mse", "grid=uniform,bits=4,scheme=symmetric,gran=channel:0,range=mse,round=nearest-even,overflow=saturate,scale=float,div=divide"},
    {"round=odd,uint3", "grid=uniform,bits=3,scheme=unsigned,gran=tensor,range=minmax,round=odd,overflow=saturate,scale=float,div=divide"},
};

START_TEST(test_every_word)
{
    for (size_t i = 0; i < sizeof words / sizeof *words; i++)
        ck_assert_msg(strcmp(canon(words[i].spec), words[i].canonical) == 0, "'%s' gave '%s', expected '%s'",
                      words[i].spec, canon(words[i].spec), words[i].canonical);
}
END_TEST

START_TEST(test_fields)
{
    qs_quantizer_t q;
    qs_quantizer_default(&q);
    ck_assert_int_eq(qs_quantizer_parse("uint6,gran=group:2:64,range=percentile:99.5,round=stochastic:11:4,"
                                        "overflow=wrap,scale=pow2,div=reciprocal",
                                        "t", &q),
                     QS_OK);
    ck_assert_int_eq(q.grid, QS_GRID_UNIFORM);
    ck_assert_int_eq(q.bits, 6);
    ck_assert_int_eq(q.scheme, QS_SCHEME_UNSIGNED);
    ck_assert_int_eq(q.gran.kind, QS_GRAN_GROUP);
    ck_assert_int_eq(q.gran.axis, 2);
    ck_assert_int_eq(q.gran.group, 64);
    ck_assert_int_eq(q.range.method, QS_RANGE_PERCENTILE);
    ck_assert(q.range.percentile == 99.5);
    ck_assert_int_eq(q.round.mode, QS_ROUND_STOCHASTIC);
    ck_assert_uint_eq(q.round.seed, 11);
    ck_assert_int_eq(q.round.rbits, 4);
    ck_assert_int_eq(q.overflow, QS_OVERFLOW_WRAP);
    ck_assert_int_eq(q.scale_type, QS_SCALE_POW2);
    ck_assert_int_eq(q.div, QS_DIV_RECIPROCAL);

    ck_assert_int_eq(qs_quantizer_parse("range=aciq:gauss,gran=channel:-1,int3", "t", &q), QS_OK);
    ck_assert_int_eq(q.range.method, QS_RANGE_ACIQ);
    ck_assert_int_eq(q.range.dist, QS_ACIQ_GAUSS);
    ck_assert_int_eq(q.gran.kind, QS_GRAN_CHANNEL);
    ck_assert_int_eq(q.gran.axis, -1);
    ck_assert_int_eq(q.bits, 3);
    ck_assert_int_eq(q.scheme, QS_SCHEME_SYMMETRIC);
    /* words not in the spec keep their earlier value */
    ck_assert_int_eq(q.overflow, QS_OVERFLOW_WRAP);
    ck_assert_int_eq(q.round.mode, QS_ROUND_STOCHASTIC);
}
END_TEST

START_TEST(test_errors)
{
    /* the exact message of an unknown key */
    qs_quantizer_t q;
    qs_quantizer_default(&q);
    ck_assert_int_eq(qs_quantizer_parse("bitz=4", "--quant", &q), QS_ERR_INVALID);
    ck_assert_str_eq(qs_last_error(), "--quant: unknown key 'bitz' (expected one of: grid, bits, scheme, gran, "
                                      "range, round, overflow, scale, div, block)");

    expect_error("bits=4,Bits=5", "unknown key 'Bits'", NULL);
    expect_error("grid=ls-9", "key 'grid'", "uniform");
    expect_error("bits=0", "key 'bits'", "1..32");
    expect_error("bits=33", "key 'bits'", "1..32");
    expect_error("bits=-1", "key 'bits'", "1..32");
    expect_error("bits=four", "key 'bits'", "integer");
    expect_error("bits=4.5", "key 'bits'", "integer");
    expect_error("bits=", "bits", "no value");
    expect_error("scheme=signed", "key 'scheme'", "symmetric, symmetric-narrow, unsigned, asymmetric, asymmetric-signed");
    expect_error("gran=row", "key 'gran'", "channel:AXIS");
    expect_error("gran=channel:x", "key 'gran'", "integer");
    expect_error("gran=channel:5", "key 'gran'", "out of range");
    expect_error("gran=channel:-6", "key 'gran'", "out of range");
    expect_error("gran=channel:1:2", "key 'gran'", "group:AXIS:SIZE");
    expect_error("gran=group", "key 'gran'", "group:SIZE");
    expect_error("gran=group:0", "key 'gran'", "out of range");
    expect_error("gran=group:1:2:3", "key 'gran'", "group:AXIS:SIZE");
    expect_error("gran=tensor:0", "key 'gran'", "tensor");
    expect_error("range=max", "key 'range'", "percentile:P");
    expect_error("range=percentile:0", "key 'range'", "(0, 100]");
    expect_error("range=percentile:100.5", "key 'range'", "out of range");
    expect_error("range=percentile:nan", "key 'range'", "number");
    expect_error("range=percentile:", "key 'range'", "number");
    expect_error("range=mse:3", "key 'range'", "minmax");
    expect_error("range=aciq:cauchy", "key 'range'", "laplace, gauss");
    expect_error("round=nearest", "key 'round'", "nearest-even");
    expect_error("round=stochastic:x", "key 'round'", "integer");
    expect_error("round=stochastic:-1", "key 'round'", "out of range");
    expect_error("round=stochastic:1:0", "key 'round'", "out of range");
    expect_error("round=stochastic:1:33", "key 'round'", "out of range");
    expect_error("round=floor:3", "key 'round'", "stochastic:SEED:BITS");
    expect_error("overflow=clamp", "key 'overflow'", "saturate, wrap");
    expect_error("scale=fp32", "key 'scale'", "float, pow2, fp16, bf16, e8m0");
    expect_error("div=multiply", "key 'div'", "divide, reciprocal");
    /* the tokenizer's errors reach the caller */
    expect_error("bits=4,,round=floor", "--quant", "empty word");
    expect_error("bits=4,", "--quant", "empty word");
    expect_error(",", "--quant", "empty word");
    expect_error("bits=4,bits=5", "duplicate key 'bits'", NULL);
    expect_error("=4", "--quant", "no key");
    /* bare words: only the shorthands */
    expect_error("nearest-even", "did you mean round=nearest-even", NULL);
    expect_error("asymmetric", "did you mean scheme=asymmetric", NULL);
    expect_error("mse", "did you mean range=mse", NULL);
    expect_error("channel", "did you mean gran=channel", NULL);
    expect_error("pow2", "did you mean scale=pow2", NULL);
    expect_error("w8a8", "unknown word 'w8a8'", "int2..int16");
    expect_error("int1", "shorthand 'int1'", "2..16");
    expect_error("int17", "shorthand 'int17'", "2..16");
    expect_error("uint32", "shorthand 'uint32'", "scheme=unsigned");
    expect_error("int04", "unknown word 'int04'", NULL);
    expect_error("INT4", "unknown word 'INT4'", NULL);
    expect_error("int4,bits=8", "'int4' sets bits and scheme", "bits=8");
    expect_error("scheme=asymmetric,uint8", "'uint8' sets bits and scheme", "scheme=asymmetric");
    expect_error("int4,uint8", "'int4' and 'uint8' both set bits and scheme", NULL);
    /* validation after parsing */
    expect_error("bits=1,scheme=symmetric-narrow", "--quant 'bits=1,scheme=symmetric-narrow'", "narrow");
    expect_error("scheme=symmetric-narrow,bits=1", "--quant", "bits");
}
END_TEST

START_TEST(test_set_overrides)
{
    qs_quantizer_t q;
    qs_quantizer_default(&q);
    q.round.stream = 77;
    ck_assert_int_eq(qs_quantizer_set(&q, "bits", "4", "--bits"), QS_OK);
    ck_assert_int_eq(qs_quantizer_set(&q, "bits", "6", "--bits"), QS_OK);
    ck_assert_int_eq(q.bits, 6);
    ck_assert_int_eq(qs_quantizer_set(&q, "round", "stochastic:5:8", "--round"), QS_OK);
    ck_assert_int_eq(q.round.mode, QS_ROUND_STOCHASTIC);
    ck_assert_uint_eq(q.round.seed, 5);
    ck_assert_int_eq(q.round.rbits, 8);
    ck_assert_int_eq(qs_quantizer_set(&q, "round", "floor", "--round"), QS_OK);
    ck_assert_int_eq(q.round.mode, QS_ROUND_FLOOR);
    ck_assert_uint_eq(q.round.seed, 0);
    ck_assert_int_eq(q.round.rbits, 32);
    ck_assert_uint_eq(q.round.stream, 77); /* the caller's, never touched by the grammar */
    ck_assert_int_eq(qs_quantizer_set(&q, "gran", "group:1:8", "--granularity"), QS_OK);
    ck_assert_int_eq(qs_quantizer_set(&q, "gran", "tensor", "--granularity"), QS_OK);
    ck_assert_int_eq(q.gran.kind, QS_GRAN_TENSOR);
    ck_assert_int_eq(q.gran.axis, 0);
    ck_assert_int_eq(q.gran.group, 0);
    ck_assert_int_eq(qs_quantizer_set(&q, "range", "percentile:50", "--range"), QS_OK);
    ck_assert_int_eq(qs_quantizer_set(&q, "range", "percentile", "--range"), QS_OK);
    ck_assert(q.range.percentile == 99.99);
    ck_assert_int_eq(qs_quantizer_set(&q, "scale", "e8m0", "--scale-type"), QS_OK);
    ck_assert_int_eq(q.scale_type, QS_SCALE_E8M0);

    /* after a spec string, as the command applies flags after --quant */
    qs_quantizer_default(&q);
    ck_assert_int_eq(qs_quantizer_parse("int4,round=ceil", "--quant", &q), QS_OK);
    ck_assert_int_eq(qs_quantizer_set(&q, "round", "floor", "--round"), QS_OK);
    ck_assert_int_eq(q.bits, 4);
    ck_assert_int_eq(q.round.mode, QS_ROUND_FLOOR);

    /* errors name the source and the key; a failed set leaves the field */
    ck_assert_int_eq(qs_quantizer_set(&q, "bits", "99", "--bits"), QS_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(qs_last_error(), "--bits: key 'bits'"));
    ck_assert_int_eq(q.bits, 4);
    ck_assert_int_eq(qs_quantizer_set(&q, "colour", "red", "--x"), QS_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(qs_last_error(), "--x: unknown key 'colour' (expected one of: grid,"));
    ck_assert_int_eq(qs_quantizer_set(&q, "bits", "", "--bits"), QS_ERR_INVALID);
    ck_assert_int_eq(qs_quantizer_set(&q, "bits", NULL, "--bits"), QS_ERR_INVALID);
    ck_assert_int_eq(qs_quantizer_set(&q, "range", "kl:1", "--range"), QS_ERR_INVALID);
    ck_assert_int_eq(q.range.method, QS_RANGE_MINMAX);

    /* a flag's value is not bounded by the tokenizer: one too long to parse
     * is refused, never cut short into a different, valid value */
    char longv[160];
    snprintf(longv, sizeof longv, "channel:%060d1junk", 0);
    ck_assert_int_eq(qs_quantizer_set(&q, "gran", longv, "--granularity"), QS_ERR_INVALID);
    ck_assert_int_eq(q.gran.kind, QS_GRAN_TENSOR);
    snprintf(longv, sizeof longv, "percentile:99.%060dx", 0);
    ck_assert_int_eq(qs_quantizer_set(&q, "range", longv, "--range"), QS_ERR_INVALID);
    snprintf(longv, sizeof longv, "stochastic:%060d7:8x", 0);
    ck_assert_int_eq(qs_quantizer_set(&q, "round", longv, "--round"), QS_ERR_INVALID);
    ck_assert_int_eq(q.round.mode, QS_ROUND_FLOOR);
}
END_TEST

/* Random quantizers, drawn from the counter-based generator so that a failure reproduces. */
static uint32_t draw(uint64_t *i) { return qs_rng_u32(2024, 7, (*i)++); }

static void random_quantizer(qs_quantizer_t *q, uint64_t *i)
{
    qs_quantizer_default(q);
    q->bits = 1 + (int)(draw(i) % 32);
    q->scheme = (qs_scheme_t)(draw(i) % QS_SCHEME_COUNT);
    switch (draw(i) % 3) {
    case 0: q->gran = (qs_granularity_t){QS_GRAN_TENSOR, 0, 0}; break;
    case 1: q->gran = (qs_granularity_t){QS_GRAN_CHANNEL, (int)(draw(i) % 10) - 5, 0}; break;
    default: q->gran = (qs_granularity_t){QS_GRAN_GROUP, (int)(draw(i) % 10) - 5, 1 + (int64_t)(draw(i) % 100000)};
    }
    q->range.method = (qs_range_method_t)(draw(i) % QS_RANGE_COUNT);
    if (q->range.method == QS_RANGE_PERCENTILE) {
        /* any double in (0, 100]: the canonical string must carry it exactly */
        double u = (double)(draw(i) | 1u) / 4294967296.0;
        q->range.percentile = draw(i) % 4 ? 100.0 * u : (double)(1 + draw(i) % 10000) / 100.0;
    }
    if (q->range.method == QS_RANGE_ACIQ)
        q->range.dist = (qs_aciq_dist_t)(draw(i) % 2);
    q->round.mode = (qs_round_mode_t)(draw(i) % QS_ROUND_COUNT);
    if (q->round.mode == QS_ROUND_STOCHASTIC) {
        q->round.seed = ((uint64_t)draw(i) << 31) ^ draw(i);
        q->round.rbits = 1 + (int)(draw(i) % 32);
    }
    q->overflow = (qs_overflow_t)(draw(i) % 2);
    q->scale_type = (qs_scale_type_t)(draw(i) % QS_SCALE_COUNT);
    q->div = (qs_div_t)(draw(i) % 2);
}

START_TEST(test_round_trip)
{
    uint64_t idx = 0;
    int valid = 0;
    const int n = 2000;
    for (int k = 0; k < n; k++) {
        qs_quantizer_t q, back;
        random_quantizer(&q, &idx);
        if (qs_quantizer_validate(&q) < 0)
            continue;
        valid++;
        char s[512], s2[512];
        qs_quantizer_str(&q, s, sizeof s);
        /* parse on top of a quantizer that differs in every field */
        qs_quantizer_default(&back);
        ck_assert_int_eq(qs_quantizer_parse("uint5,gran=group:2:3,range=aciq:gauss,round=stochastic:9:9,"
                                            "overflow=wrap,scale=bf16,div=reciprocal",
                                            "t", &back),
                         QS_OK);
        ck_assert_msg(qs_quantizer_parse(s, "t", &back) == QS_OK, "'%s': %s", s, qs_last_error());
        ck_assert_msg(same_quantizer(&q, &back), "'%s' read back as '%s'", s, qs_quantizer_str(&back, s2, sizeof s2));
        ck_assert_str_eq(qs_quantizer_str(&back, s2, sizeof s2), s);
    }
    /* most random quantizers are valid (only narrow 1-bit and similar corners are not) */
    ck_assert_msg(valid > n / 2, "only %d of %d random quantizers were valid", valid, n);
}
END_TEST

START_TEST(test_str_truncates)
{
    qs_quantizer_t q;
    qs_quantizer_default(&q);
    char small[10];
    ck_assert_ptr_eq(qs_quantizer_str(&q, small, sizeof small), small);
    ck_assert_str_eq(small, "grid=unif");
}
END_TEST

static Suite *mk(void)
{
    Suite *s = suite_create("spec");
    TCase *tc = tcase_create("spec");
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_every_word);
    tcase_add_test(tc, test_fields);
    tcase_add_test(tc, test_errors);
    tcase_add_test(tc, test_set_overrides);
    tcase_add_test(tc, test_round_trip);
    tcase_add_test(tc, test_str_truncates);
    suite_add_tcase(s, tc);
    return s;
}
QS_TEST_MAIN(mk)

/* core/rng.c — the counter-based random generator, Philox4x32-10.
 *
 * Salmon, Moraes, Dror, Shaw: "Parallel random numbers: as easy as 1, 2, 3",
 * SC'11. Multipliers 0xD2511F53 and 0xCD9E8D57, Weyl key increments
 * 0x9E3779B9 (golden ratio) and 0xBB67AE85 (sqrt(3)-1), 10 rounds. The
 * Random123 known-answer vectors (tests/kat_vectors of the Random123
 * distribution) are pinned in tests/test_core.c.
 *
 * Stream layout: word `index` of stream (seed, stream) is word index%4 of
 * the block with counter {index/4 lo, index/4 hi, stream lo, stream hi} and
 * key {seed lo, seed hi}. Every word is a pure function of (seed, stream,
 * index), which is what makes stochastic operations independent of the
 * thread count and of how work is split. */
#include "core/core.h"

#include <string.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

static inline void philox_block(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0, uint32_t k1,
                                uint32_t out[4])
{
    for (int r = 0; r < 10; r++) {
        if (r > 0) {
            k0 += PHILOX_W0;
            k1 += PHILOX_W1;
        }
        uint64_t p0 = (uint64_t)PHILOX_M0 * c0;
        uint64_t p1 = (uint64_t)PHILOX_M1 * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
        uint32_t n1 = (uint32_t)p1;
        uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        uint32_t n3 = (uint32_t)p0;
        c0 = n0;
        c1 = n1;
        c2 = n2;
        c3 = n3;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

void qs_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4])
{
    philox_block(ctr[0], ctr[1], ctr[2], ctr[3], key[0], key[1], out);
}

static inline void stream_block(uint64_t seed, uint64_t stream, uint64_t block, uint32_t out[4])
{
    philox_block((uint32_t)block, (uint32_t)(block >> 32), (uint32_t)stream, (uint32_t)(stream >> 32),
                 (uint32_t)seed, (uint32_t)(seed >> 32), out);
}

uint32_t qs_rng_u32(uint64_t seed, uint64_t stream, uint64_t index)
{
    uint32_t w[4];
    stream_block(seed, stream, index / 4, w);
    return w[index % 4];
}

/* Batches of FILL_BATCH words, written over arrays of blocks so that the
 * compiler vectorises the rounds (several times faster than one block at a
 * time, which is what stochastic rounding needs); the same stream as
 * qs_rng_u32, pinned by tests/test_core.c. */
#define FILL_BATCH 512
#define PHILOX_NB (FILL_BATCH / 4 + 2)

QS_TARGET_CLONES static void fill_batch(uint64_t seed, uint64_t stream, uint64_t first, int n, uint32_t *out)
{
    /* The four words of each block live in the low halves of 64-bit lanes:
     * (a & 0xffffffff) * M is then the "multiply the even 32-bit halves"
     * instruction (pmuludq), without the unpacking that a widening multiply
     * of 32-bit lanes costs. */
    uint64_t c0[PHILOX_NB], c1[PHILOX_NB], c2[PHILOX_NB], c3[PHILOX_NB];
    uint32_t k0[10], k1[10];
    k0[0] = (uint32_t)seed;
    k1[0] = (uint32_t)(seed >> 32);
    for (int r = 1; r < 10; r++) {
        k0[r] = k0[r - 1] + PHILOX_W0;
        k1[r] = k1[r - 1] + PHILOX_W1;
    }
    const uint64_t b0 = first / 4;
    const int off = (int)(first % 4);
    const int nb = (off + n + 3) / 4;
    const uint64_t m32 = 0xffffffffu;
    for (int i = 0; i < nb; i++) {
        uint64_t b = b0 + (uint64_t)i;
        c0[i] = b & m32;
        c1[i] = b >> 32;
        c2[i] = stream & m32;
        c3[i] = stream >> 32;
    }
    /* blocks across the vector lanes, the ten rounds in registers */
    for (int i = 0; i < nb; i++) {
        uint64_t a0 = c0[i], a1 = c1[i], a2 = c2[i], a3 = c3[i];
        for (int r = 0; r < 10; r++) {
            uint64_t p0 = (a0 & m32) * PHILOX_M0;
            uint64_t p1 = (a2 & m32) * PHILOX_M1;
            uint64_t n0 = (p1 >> 32) ^ a1 ^ k0[r];
            uint64_t n2 = (p0 >> 32) ^ a3 ^ k1[r];
            a1 = p1 & m32;
            a3 = p0 & m32;
            a0 = n0 & m32;
            a2 = n2 & m32;
        }
        c0[i] = a0;
        c1[i] = a1;
        c2[i] = a2;
        c3[i] = a3;
    }
    uint32_t words[4 * PHILOX_NB];
    for (int i = 0; i < nb; i++) {
        words[4 * i] = (uint32_t)c0[i];
        words[4 * i + 1] = (uint32_t)c1[i];
        words[4 * i + 2] = (uint32_t)c2[i];
        words[4 * i + 3] = (uint32_t)c3[i];
    }
    memcpy(out, words + off, (size_t)n * sizeof *out);
}


void qs_rng_fill_u32(uint64_t seed, uint64_t stream, uint64_t first, size_t n, uint32_t *out)
{
    while (n > 0) {
        int m = n > FILL_BATCH ? FILL_BATCH : (int)n;
        fill_batch(seed, stream, first, m, out);
        first += (uint64_t)m;
        out += m;
        n -= (size_t)m;
    }
}

double qs_rng_uniform(uint64_t seed, uint64_t stream, uint64_t index)
{
    /* words 2i and 2i+1 sit in the same block (2i is even), so one block
     * gives both: 32 high bits from word 2i, 21 low bits from the top of
     * word 2i+1; scaled by 2^-53 the value lies in [0, 1 - 2^-53].
     * index < 2^63 (2*index is taken modulo 2^64). */
    uint64_t w0 = 2 * index;
    uint32_t w[4];
    stream_block(seed, stream, w0 / 4, w);
    unsigned lane = (unsigned)(w0 % 4);
    uint64_t bits = ((uint64_t)w[lane] << 21) | (w[lane + 1] >> 11);
    return (double)bits * 0x1p-53;
}

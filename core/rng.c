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

void qs_rng_fill_u32(uint64_t seed, uint64_t stream, uint64_t first, size_t n, uint32_t *out)
{
    uint32_t w[4];
    uint64_t block = first / 4;
    size_t i = 0;
    unsigned lane = (unsigned)(first % 4);
    /* an unaligned start takes the tail of its block */
    if (lane != 0 && n > 0) {
        stream_block(seed, stream, block++, w);
        while (lane < 4 && i < n)
            out[i++] = w[lane++];
    }
    /* whole blocks straight into the output */
    while (n - i >= 4) {
        stream_block(seed, stream, block++, out + i);
        i += 4;
    }
    if (i < n) {
        stream_block(seed, stream, block, w);
        for (unsigned k = 0; i < n; k++)
            out[i++] = w[k];
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

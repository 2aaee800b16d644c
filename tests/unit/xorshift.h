/* SPDX-License-Identifier: MIT */
/*
 * Unit-test helper: a fixed-seed xorshift32, so that "random" tests are reproducible (the
 * same sequence on every run and machine for a given seed).
 */
#pragma once

#include <stdint.h>

static inline uint32_t xorshift32(uint32_t *s)
{
	uint32_t x = *s;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return *s = x;
}

/* SPDX-License-Identifier: MIT */
/*
 * Standalone runs of bulkhead-worker (see standalone.c): `--standalone threads|fork-per-job`,
 * the unsupervised baselines of `bulkhead experiment`.
 */
#pragma once

/* argv[1] is this option, or "--standalone=MODE" (main.c). */
#define STANDALONE_OPTION "--standalone"

/* Runs a standalone job set; returns the worker's exit code (see worker.h). */
int standalone_main(int argc, char **argv);

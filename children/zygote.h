/* SPDX-License-Identifier: MIT */
/* The fork server (zygote.c): `bulkhead-worker --zygote --master-pid PID`. */
#pragma once

#define ZYGOTE_OPTION "--zygote"

/* argv[1] is ZYGOTE_OPTION. Returns the exit code (worker.h), or serves until the master goes. */
int zygote_main(int argc, char **argv);

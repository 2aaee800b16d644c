/* SPDX-License-Identifier: MIT */
/* The fork server (zygote.c): `bulkhead-worker --zygote --master-pid PID`. */
#pragma once

int zygote_main(int argc, char **argv);

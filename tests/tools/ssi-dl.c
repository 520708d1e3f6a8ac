// SPDX-License-Identifier: GPL-2.0
/*
 * libssi-dl.so: the library that `ssi-threads dlopen` loads from a thread running away
 * from its process's home. It has one of each kind of memory a shared library maps
 * (text, read-only data, initialised data and bss), so that the test can tell that each
 * is at the same address, with the same contents, in every address space of the
 * process.
 */
int ssi_dl_data = 1234;
int ssi_dl_bss;
static const char ssi_dl_rodata[] = "ssi-dl rodata";

const char *ssi_dl_name(void)
{
	return ssi_dl_rodata;
}

/* Adds n to ssi_dl_data and 1 to ssi_dl_bss; the new ssi_dl_data. */
int ssi_dl_add(int n)
{
	ssi_dl_bss += 1;
	return ssi_dl_data += n;
}

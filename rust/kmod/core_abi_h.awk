# SPDX-License-Identifier: GPL-2.0
#
# Writes ssi_core/core_abi.h from rust/kmod/core_abi.rs: the C prototypes of the
# functions ssi_core exports to the other modules, and the list SSI_CORE_ABI(X) that
# exports.c exports. The Rust list is the only place their signatures are written; see
# the header of core_abi.rs for the form of its entries. Run by ssi_core/Kbuild.
#
#   awk -f core_abi_h.awk core_abi.rs > core_abi.h

function die(msg) {
	printf "%s:%d: %s\n", FILENAME, FNR, msg > "/dev/stderr"
	failed = 1
	exit 1
}

# The C spelling of one Rust type of the list; structs only behind a pointer.
function ctype(t, pointee,    base) {
	gsub(/^ +| +$/, "", t)
	if (t ~ /^\*const /) {
		base = ctype(substr(t, 8), 1)
		return "const " base " *"
	}
	if (t ~ /^\*mut /)
		return ctype(substr(t, 6), 1) " *"
	if (t ~ /^(u8|u16|u32|u64|bool)$/)
		return t
	if (t == "i32" || t == "c_int")
		return "int"
	if (t == "usize")
		return "size_t"
	if (t == "isize")
		return "ssize_t"
	if (t == "c_void")
		return "void"
	if (pointee && t ~ /^[A-Z][A-Za-z0-9]*$/) {
		structs[t] = 1
		return "struct " snake(t)
	}
	die("type '" t "' has no C spelling here (structs go behind pointers)")
}

# SsiServiceOps -> ssi_service_ops
function snake(t,    out, i, c) {
	out = ""
	for (i = 1; i <= length(t); i++) {
		c = substr(t, i, 1)
		if (c ~ /[A-Z]/) {
			if (i > 1)
				out = out "_"
			c = tolower(c)
		}
		out = out c
	}
	return out
}

# One declaration: "type name" with the pointer star next to the name.
function decl(type, name) {
	if (type ~ / \*$/)
		return type name
	return type " " name
}

/\/\/ BEGIN ssi_core ABI/ { inside = 1; next }
/\/\/ END ssi_core ABI/ { inside = 0; done = 1; next }

inside {
	line = $0
	gsub(/^ +| +$/, "", line)
	if (line == "" || line ~ /^\/\//)
		next
	if (!match(line, /^fn [a-z_][a-z0-9_]*\(/))
		die("expected 'fn name(...)': " line)
	name = substr(line, 4, RLENGTH - 4)
	rest = substr(line, RLENGTH + 1)
	close_at = index(rest, ")")
	if (close_at == 0 || rest !~ /;$/)
		die("an entry is one line ending in ';': " line)
	args = substr(rest, 1, close_at - 1)
	ret = substr(rest, close_at + 1)
	sub(/;$/, "", ret)
	gsub(/^ +| +$/, "", ret)
	if (ret == "")
		cret = "void"
	else if (ret ~ /^-> /)
		cret = ctype(substr(ret, 4), 0)
	else
		die("expected '-> Type' after the arguments: " line)

	cargs = ""
	n = split(args, parts, ",")
	for (i = 1; i <= n; i++) {
		a = parts[i]
		gsub(/^ +| +$/, "", a)
		if (a == "")
			continue
		colon = index(a, ":")
		if (colon == 0)
			die("expected 'arg: Type': " a)
		an = substr(a, 1, colon - 1)
		cargs = cargs (cargs == "" ? "" : ", ") decl(ctype(substr(a, colon + 1), 0), an)
	}
	if (cargs == "")
		cargs = "void"
	count++
	names[count] = name
	protos[count] = decl(cret, name) "(" cargs ");"
}

END {
	if (failed)
		exit 1
	if (!done || count == 0) {
		printf "%s: no '// BEGIN ssi_core ABI' ... '// END ssi_core ABI' list\n", FILENAME > "/dev/stderr"
		exit 1
	}
	print "/* SPDX-License-Identifier: GPL-2.0 */"
	print "/* Generated from rust/kmod/core_abi.rs by rust/kmod/core_abi_h.awk: do not edit. */"
	print "#ifndef SSI_CORE_ABI_H"
	print "#define SSI_CORE_ABI_H"
	print ""
	print "#include <linux/types.h>"
	print ""
	for (s in structs)
		sorted[++ns] = s
	for (i = 1; i <= ns; i++)
		for (j = i + 1; j <= ns; j++)
			if (sorted[j] < sorted[i]) {
				t = sorted[i]; sorted[i] = sorted[j]; sorted[j] = t
			}
	for (i = 1; i <= ns; i++)
		print "struct " snake(sorted[i]) ";"
	print ""
	for (i = 1; i <= count; i++)
		print protos[i]
	print ""
	print "/* X(name) for each function above. */"
	print "#define SSI_CORE_ABI(X) \\"
	for (i = 1; i <= count; i++)
		print "\tX(" names[i] ")" (i < count ? " \\" : "")
	print ""
	print "#endif"
}

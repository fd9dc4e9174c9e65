//! Generated ELF headers for unit tests: no fixture files.

/// An ELF header (52 or 64 bytes) with e_type ET_EXEC and no program headers.
pub(crate) fn elf(class: u8, be: bool, machine: u16, flags: u32) -> Vec<u8> {
    let is64 = class == 64;
    let mut h = vec![0u8; if is64 { 64 } else { 52 }];
    h[..4].copy_from_slice(b"\x7fELF");
    h[4] = if is64 { 2 } else { 1 };
    h[5] = if be { 2 } else { 1 };
    h[6] = 1;
    put16(&mut h, 16, 2, be);
    put16(&mut h, 18, machine, be);
    put32(&mut h, 20, 1, be);
    let (flags_at, ehsize_at) = if is64 { (48, 52) } else { (36, 40) };
    put32(&mut h, flags_at, flags, be);
    let len = h.len() as u16;
    put16(&mut h, ehsize_at, len, be);
    h
}

/// `elf(...)` followed by one PT_INTERP program header and its string.
pub(crate) fn elf_with_interp(
    class: u8,
    be: bool,
    machine: u16,
    flags: u32,
    interp: &str,
) -> Vec<u8> {
    let is64 = class == 64;
    let mut h = elf(class, be, machine, flags);
    let ehdr = h.len();
    let phsize = if is64 { 56 } else { 32 };
    let str_off = ehdr + phsize;
    let str_len = interp.len() + 1;
    // e_phoff, e_phentsize, e_phnum
    if is64 {
        put64(&mut h, 32, ehdr as u64, be);
        put16(&mut h, 54, phsize as u16, be);
        put16(&mut h, 56, 1, be);
    } else {
        put32(&mut h, 28, ehdr as u32, be);
        put16(&mut h, 42, phsize as u16, be);
        put16(&mut h, 44, 1, be);
    }
    let mut ph = vec![0u8; phsize];
    put32(&mut ph, 0, 3, be);
    if is64 {
        put64(&mut ph, 8, str_off as u64, be);
        put64(&mut ph, 32, str_len as u64, be);
    } else {
        put32(&mut ph, 4, str_off as u32, be);
        put32(&mut ph, 16, str_len as u32, be);
    }
    h.extend_from_slice(&ph);
    h.extend_from_slice(interp.as_bytes());
    h.push(0);
    h
}

fn put16(b: &mut [u8], at: usize, v: u16, be: bool) {
    let raw = if be { v.to_be_bytes() } else { v.to_le_bytes() };
    b[at..at + 2].copy_from_slice(&raw);
}

fn put32(b: &mut [u8], at: usize, v: u32, be: bool) {
    let raw = if be { v.to_be_bytes() } else { v.to_le_bytes() };
    b[at..at + 4].copy_from_slice(&raw);
}

fn put64(b: &mut [u8], at: usize, v: u64, be: bool) {
    let raw = if be { v.to_be_bytes() } else { v.to_le_bytes() };
    b[at..at + 8].copy_from_slice(&raw);
}

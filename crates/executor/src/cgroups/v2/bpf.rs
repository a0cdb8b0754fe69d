//! A hand assembler for the cgroup v2 device filter: an eBPF program of type
//! BPF_PROG_TYPE_CGROUP_DEVICE that returns 1 (allow) or 0 (deny) for each device access.
//!
//! The context is `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }`
//! where access_type is `(access << 16) | type` (type 1 block, 2 char; access bits 1 mknod,
//! 2 read, 4 write). The program checks the OCI rules from the last to the first, so the last
//! matching rule wins, as with v1's ordered devices.allow/devices.deny writes after "deny a":
//! an allow rule matches when the requested access is a subset of its access, a deny rule when
//! the request shares any bit with it. No match: deny.

use crate::cgroups::v1::devices::Rule;

/// One eBPF instruction, laid out as the kernel's `struct bpf_insn`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Insn {
    pub code: u8,
    /// dst in the low nibble, src in the high one
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

const LDX_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const MOV32_X: u8 = 0xbc; // BPF_ALU | BPF_MOV | BPF_X
const AND32_K: u8 = 0x54; // BPF_ALU | BPF_AND | BPF_K
const RSH32_K: u8 = 0x74; // BPF_ALU | BPF_RSH | BPF_K
const MOV64_K: u8 = 0xb7; // BPF_ALU64 | BPF_MOV | BPF_K
const JEQ_K: u8 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const JNE_K: u8 = 0x55; // BPF_JMP | BPF_JNE | BPF_K
const EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT

// registers: r1 context; r2 access; r3 type; r4 major; r5 minor; r6 scratch; r0 result
const R0: u8 = 0;
const R1: u8 = 1;
const R_ACCESS: u8 = 2;
const R_TYPE: u8 = 3;
const R_MAJOR: u8 = 4;
const R_MINOR: u8 = 5;
const R_TMP: u8 = 6;

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: dst | (src << 4),
        off,
        imm,
    }
}

/// A condition that skips to the next rule when it holds: (code, register, immediate).
type Skip = (u8, u8, i32);

/// Builds the program for `rules` (in OCI order).
pub(crate) fn device_program(rules: &[Rule]) -> Vec<Insn> {
    let mut p = vec![
        insn(LDX_W, R_ACCESS, R1, 0, 0),
        insn(MOV32_X, R_TYPE, R_ACCESS, 0, 0),
        insn(AND32_K, R_TYPE, 0, 0, 0xffff),
        insn(RSH32_K, R_ACCESS, 0, 0, 16),
        insn(LDX_W, R_MAJOR, R1, 4, 0),
        insn(LDX_W, R_MINOR, R1, 8, 0),
    ];
    for r in rules.iter().rev() {
        let mut block: Vec<(Insn, bool)> = Vec::new(); // (insn, is a skip jump)
        let mut skip = |(code, reg, imm): Skip| block.push((insn(code, reg, 0, 0, imm), true));
        match r.kind {
            'b' => skip((JNE_K, R_TYPE, 1)),
            'c' => skip((JNE_K, R_TYPE, 2)),
            _ => {}
        }
        if let Some(m) = r.major {
            skip((JNE_K, R_MAJOR, m as i32));
        }
        if let Some(m) = r.minor {
            skip((JNE_K, R_MINOR, m as i32));
        }
        if r.access & 7 != 7 {
            block.push((insn(MOV32_X, R_TMP, R_ACCESS, 0, 0), false));
            if r.allow {
                // requested bits outside the rule's: not this rule
                block.push((insn(AND32_K, R_TMP, 0, 0, (!r.access & 7) as i32), false));
                block.push((insn(JNE_K, R_TMP, 0, 0, 0), true));
            } else {
                // no requested bit in the rule's: not this rule
                block.push((insn(AND32_K, R_TMP, 0, 0, r.access as i32), false));
                block.push((insn(JEQ_K, R_TMP, 0, 0, 0), true));
            }
        }
        let unconditional = !block.iter().any(|(_, is_skip)| *is_skip);
        block.push((insn(MOV64_K, R0, 0, 0, i32::from(r.allow)), false));
        block.push((insn(EXIT, 0, 0, 0, 0), false));
        let len = block.len();
        for (i, (mut ins, is_skip)) in block.into_iter().enumerate() {
            if is_skip {
                ins.off = (len - i - 1) as i16;
            }
            p.push(ins);
        }
        if unconditional {
            // everything before this rule is unreachable, and the verifier refuses dead code
            return p;
        }
    }
    p.push(insn(MOV64_K, R0, 0, 0, 0));
    p.push(insn(EXIT, 0, 0, 0, 0));
    p
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Runs the tiny subset of eBPF that `device_program` emits.
    pub fn run(p: &[Insn], typ: u32, major: u32, minor: u32, access: u32) -> u64 {
        let ctx = [(access << 16) | typ, major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        loop {
            let i = p[pc];
            let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
            pc += 1;
            match i.code {
                LDX_W => {
                    assert_eq!(src, 1);
                    r[dst] = u64::from(ctx[i.off as usize / 4]);
                }
                MOV32_X => r[dst] = r[src] & 0xffff_ffff,
                AND32_K => r[dst] = (r[dst] & 0xffff_ffff) & (i.imm as u32 as u64),
                RSH32_K => r[dst] = (r[dst] & 0xffff_ffff) >> i.imm,
                MOV64_K => r[dst] = i.imm as i64 as u64,
                JEQ_K | JNE_K => {
                    let eq = r[dst] == i.imm as i64 as u64;
                    if eq == (i.code == JEQ_K) {
                        pc += i.off as usize;
                    }
                }
                EXIT => return r[0],
                c => panic!("unexpected opcode {c:#x}"),
            }
        }
    }

    fn rule(allow: bool, kind: char, major: Option<u32>, minor: Option<u32>, access: u32) -> Rule {
        Rule {
            allow,
            kind,
            major,
            minor,
            access,
        }
    }

    const R: u32 = 2;
    const W: u32 = 4;
    const M: u32 = 1;

    #[test]
    fn deny_all_then_allow_null_and_pts() {
        let p = device_program(&[
            rule(false, 'a', None, None, 7),
            rule(true, 'c', Some(1), Some(3), 7),
            rule(true, 'c', Some(136), None, R | W),
            rule(false, 'c', Some(136), Some(5), W),
        ]);
        assert_eq!(run(&p, 2, 1, 3, R | W), 1, "/dev/null rw");
        assert_eq!(run(&p, 2, 1, 5, R), 0, "/dev/zero");
        assert_eq!(run(&p, 1, 1, 3, R), 0, "block 1:3");
        assert_eq!(run(&p, 2, 136, 0, R | W), 1, "pts 0");
        assert_eq!(run(&p, 2, 136, 0, M), 0, "mknod pts");
        assert_eq!(run(&p, 2, 136, 5, R), 1, "pts 5 read");
        assert_eq!(run(&p, 2, 136, 5, R | W), 0, "pts 5 write denied");
        // the first rule is unconditional and terminates the program: no default epilogue
        assert_eq!(p.last().unwrap().code, EXIT);
        assert_eq!(p[p.len() - 2], insn(MOV64_K, 0, 0, 0, 0));
    }

    #[test]
    fn empty_list_denies_everything_and_allow_all_allows() {
        let p = device_program(&[]);
        assert_eq!(run(&p, 2, 1, 3, R), 0);
        let p = device_program(&[
            rule(false, 'a', None, None, 7),
            rule(true, 'a', None, None, 7),
        ]);
        assert_eq!(run(&p, 1, 8, 0, R | W | M), 1);
        // the allow-all rule hides the deny-all one: its code must not be emitted
        assert_eq!(p.len(), 6 + 2);
    }

    #[test]
    fn encoding_of_the_prologue() {
        let p = device_program(&[]);
        assert_eq!(
            p[0],
            Insn {
                code: 0x61,
                regs: 0x12,
                off: 0,
                imm: 0
            }
        );
        assert_eq!(
            p[4],
            Insn {
                code: 0x61,
                regs: 0x14,
                off: 4,
                imm: 0
            }
        );
        assert_eq!(std::mem::size_of::<Insn>(), 8);
    }
}

;; A region selector in WebAssembly text, no compiler needed: the first 10,000 bases of every
;; record (all of a shorter one). The host writes `record<TAB>ID<TAB>LENGTH\n…` at the address
;; dnabert_alloc returned; this reads LENGTH (the digits after the second tab) and chooses
;; [0, min(LENGTH, 10000)).
(module
  (import "dnabert" "region" (func $region (param i64 i64)))
  (memory (export "memory") 2)
  (func (export "dnabert_abi_version") (result i32) (i32.const 1))
  ;; One input at a time, always at 1024 (inputs longer than the 127 KiB above it are refused
  ;; by the host, which checks the room).
  (func (export "dnabert_alloc") (param $len i32) (result i32) (i32.const 1024))
  (func (export "dnabert_select_record") (param $ptr i32) (param $len i32)
    (local $i i32) (local $end i32) (local $tabs i32) (local $c i32) (local $n i64)
    (local.set $i (local.get $ptr))
    (local.set $end (i32.add (local.get $ptr) (local.get $len)))
    ;; Skip to just after the second tab.
    (block $found
      (loop $scan
        (br_if $found (i32.ge_u (local.get $i) (local.get $end)))
        (if (i32.eq (i32.load8_u (local.get $i)) (i32.const 9))
          (then (local.set $tabs (i32.add (local.get $tabs) (i32.const 1)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $found (i32.eq (local.get $tabs) (i32.const 2)))
        (br $scan)))
    ;; Read the decimal length.
    (block $done
      (loop $digits
        (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
        (local.set $c (i32.sub (i32.load8_u (local.get $i)) (i32.const 48)))
        (br_if $done (i32.gt_u (local.get $c) (i32.const 9)))
        (local.set $n (i64.add (i64.mul (local.get $n) (i64.const 10))
                               (i64.extend_i32_u (local.get $c))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $digits)))
    (if (i64.gt_u (local.get $n) (i64.const 10000)) (then (local.set $n (i64.const 10000))))
    (if (i64.gt_u (local.get $n) (i64.const 0))
      (then (call $region (i64.const 0) (local.get $n))))))

;; A dataset task in WebAssembly text: the window TSS ± 50 of every transcript, labelled `tss`,
;; on the transcript's strand (the TSS is the first base of a + transcript, the last of a −
;; one), skipped where it would run off the record. Lines from the host are tab-separated:
;;   record      ID  LENGTH
;;   transcript  ID  GENE  STRAND  START  END  EXONS  LINE
(module
  (import "dnabert" "label" (func $label (param i32 i32) (result i32)))
  (import "dnabert" "emit" (func $emit (param i64 i64 i32 i32 i32 i32)))
  (memory (export "memory") 2)
  (data (i32.const 16) "tss")
  (global $record_len (mut i64) (i64.const 0))
  (func (export "dnabert_abi_version") (result i32) (i32.const 1))
  ;; One input at a time, at 1024.
  (func (export "dnabert_alloc") (param $len i32) (result i32) (i32.const 1024))
  (func (export "dnabert_task_start") (param i32 i32)
    (drop (call $label (i32.const 16) (i32.const 3))))

  ;; The address of field $n (0-based) of the line at [$p, $end), or $end.
  (func $field (param $p i32) (param $end i32) (param $n i32) (result i32)
    (block $done
      (loop $scan
        (br_if $done (i32.eqz (local.get $n)))
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (if (i32.eq (i32.load8_u (local.get $p)) (i32.const 9))
          (then (local.set $n (i32.sub (local.get $n) (i32.const 1)))))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (br $scan)))
    (local.get $p))

  ;; The decimal number at $p (up to the first non-digit).
  (func $number (param $p i32) (param $end i32) (result i64) (local $n i64) (local $c i32)
    (block $done
      (loop $digits
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $c (i32.sub (i32.load8_u (local.get $p)) (i32.const 48)))
        (br_if $done (i32.gt_u (local.get $c) (i32.const 9)))
        (local.set $n (i64.add (i64.mul (local.get $n) (i64.const 10)) (i64.extend_i32_u (local.get $c))))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (br $digits)))
    (local.get $n))

  (func (export "dnabert_task_record") (param $p i32) (param $len i32)
    (local $end i32)
    (local.set $end (i32.add (local.get $p) (local.get $len)))
    (global.set $record_len
      (call $number (call $field (local.get $p) (local.get $end) (i32.const 2)) (local.get $end))))

  (func (export "dnabert_task_transcript") (param $p i32) (param $len i32)
    (local $end i32) (local $plus i32) (local $tss i64)
    (local.set $end (i32.add (local.get $p) (local.get $len)))
    (local.set $plus (i32.eq (i32.load8_u (call $field (local.get $p) (local.get $end) (i32.const 3)))
                             (i32.const 43)))  ;; '+'
    ;; + : START (field 4); − : END (field 5), end-exclusive, so the window is END ± 50.
    (local.set $tss
      (call $number
        (call $field (local.get $p) (local.get $end) (select (i32.const 4) (i32.const 5) (local.get $plus)))
        (local.get $end)))
    (if (i32.and (i64.ge_u (local.get $tss) (i64.const 50))
                 (i64.le_u (i64.add (local.get $tss) (i64.const 50)) (global.get $record_len)))
      (then
        (call $emit (i64.sub (local.get $tss) (i64.const 50)) (i64.add (local.get $tss) (i64.const 50))
                    (select (i32.const 1) (i32.const -1) (local.get $plus))
                    (i32.const 0) (i32.const 0) (i32.const 0))))))

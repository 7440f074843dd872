// Prints the plain closing line "tests: N passed, N failed, N skipped" after
// vitest's own summary, so CI tooling that reads closing lines can count, and
// before it one "failed: <file> > <test>: <first line of the error>" line per
// failure, which .ci/run repeats at the very end of its output (where a CI log
// that keeps only its tail still shows which test failed and why).
import type { Reporter, TestModule } from 'vitest/node';

export class SummaryLineReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    const failures: string[] = [];
    for (const mod of testModules) {
      for (const test of mod.children.allTests()) {
        const state = test.result().state;
        if (state === 'passed') passed++;
        else if (state === 'failed') {
          failed++;
          failures.push(`${mod.moduleId.replace(`${process.cwd()}/`, '')} > ${test.fullName}: ${firstLine(test.result().errors?.[0]?.message)}`);
        } else skipped++;
      }
      if (mod.state() === 'failed' && mod.children.size === 0) {
        failed++;
        failures.push(`${mod.moduleId.replace(`${process.cwd()}/`, '')}: ${firstLine(mod.errors()[0]?.message)}`);
      }
    }
    const listed = failures.map((line) => `failed: ${line}\n`).join('');
    process.stdout.write(`\n${listed}tests: ${passed} passed, ${failed} failed, ${skipped} skipped\n`);
  }
}

function firstLine(message: string | undefined): string {
  return (message ?? 'no error message').split('\n', 1)[0].slice(0, 300);
}

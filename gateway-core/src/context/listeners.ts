// The change notification every context source offers (ContextSource.onChange).
export class Listeners {
  private readonly set = new Set<() => void>();

  add(listener: () => void): () => void {
    this.set.add(listener);
    return () => this.set.delete(listener);
  }

  /** A throwing listener must not stop the source's loop or the other listeners. */
  emit(onError?: (e: unknown) => void): void {
    for (const l of [...this.set]) {
      try {
        l();
      } catch (e) {
        onError?.(e);
      }
    }
  }
}

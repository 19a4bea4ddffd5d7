// FdReserve: a few descriptors held back for a rainy day. Deno.serve has no
// connection cap, Deno forbids reading /proc/self without --allow-all, and an
// accept() that hits EMFILE ends the serve loop: so the server keeps spare
// descriptors open (on /dev/null) and frees them the moment it runs out, which
// gives it room to listen again and to shed the sockets that used them up.

/**
 * Spare file descriptors.
 *
 * @example
 * ```ts
 * const reserve = new FdReserve(16);
 * // on EMFILE:
 * reserve.release();
 * setTimeout(() => reserve.refill(), 1000);
 * ```
 */
export class FdReserve {
  readonly size: number;
  #files: Deno.FsFile[] = [];

  constructor(size = 16) {
    this.size = size;
    this.refill();
  }

  /** Descriptors held now. */
  get held(): number {
    return this.#files.length;
  }

  /** Opens spares up to `size` (as many as the limit allows). */
  refill(): void {
    try {
      while (this.#files.length < this.size) this.#files.push(Deno.openSync("/dev/null"));
    } catch {
      // out of descriptors or no read access to /dev/null: hold what we have
    }
  }

  /** Closes every spare. */
  release(): void {
    for (const f of this.#files.splice(0)) f.close();
  }
}

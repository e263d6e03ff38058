namespace AotEvents.Http.Server;

/// <summary>
/// Live items under stable slot numbers: adds and removals take a lock, readers index or scan <see cref="Items"/>
/// without one. The array only grows (a reader holding an older copy sees a consistent table) and freed slots are
/// reused, so a slot number stays small and can travel in a word (the epoll data word, the sweep's scan).
/// </summary>
internal sealed class SlotTable<T>
    where T : class
{
    private readonly Lock _lock = new();
    private readonly Stack<int> _free = new();
    private T?[] _items = new T?[64];
    private int _used;

    /// <summary>The items by slot (null: free), for lock-free reads.</summary>
    public T?[] Items => Volatile.Read(ref _items);

    /// <summary>Stores <paramref name="item"/> in a free slot and returns the slot.</summary>
    public int Add(T item)
    {
        lock (_lock)
        {
            int slot;
            if (_free.Count > 0)
            {
                slot = _free.Pop();
            }
            else
            {
                if (_used == _items.Length)
                {
                    T?[] bigger = new T?[_items.Length * 2];
                    _items.CopyTo(bigger, 0);
                    Volatile.Write(ref _items, bigger);
                }
                slot = _used++;
            }
            Volatile.Write(ref _items[slot], item);
            return slot;
        }
    }

    /// <summary>Frees <paramref name="slot"/> if it still holds <paramref name="item"/>.</summary>
    public void Remove(int slot, T item)
    {
        lock (_lock)
        {
            if (slot >= 0 && slot < _used && _items[slot] == item)
            {
                _items[slot] = null;
                _free.Push(slot);
            }
        }
    }
}

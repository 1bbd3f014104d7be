package host

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

const (
	maxKeyBytes   = 4 << 10
	maxValueBytes = 16 << 20
)

// kvStore is one named key-value store of one app.
type kvStore interface {
	Get(key string) ([]byte, bool, error)
	Set(key string, val []byte) error
	Delete(key string) error
}

// kvManager opens one bbolt file per app (one bucket per store) under dir,
// or keeps stores in memory when dir is empty. Files stay open while the app
// is deployed.
type kvManager struct {
	dir string
	mu  sync.Mutex
	dbs map[string]*bolt.DB
	mem map[string]*memStore // app + "\x00" + store
}

func newKVManager(dir string) *kvManager {
	return &kvManager{dir: dir, dbs: map[string]*bolt.DB{}, mem: map[string]*memStore{}}
}

// store returns the store of app, opening the app's file on first use.
func (k *kvManager) store(app, name string) (kvStore, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.dir == "" {
		key := app + "\x00" + name
		s := k.mem[key]
		if s == nil {
			s = &memStore{m: map[string][]byte{}}
			k.mem[key] = s
		}
		return s, nil
	}
	db := k.dbs[app]
	if db == nil {
		if err := os.MkdirAll(k.dir, 0o700); err != nil {
			return nil, fmt.Errorf("host: key-value directory: %w", err)
		}
		var err error
		db, err = bolt.Open(filepath.Join(k.dir, app+".db"), 0o600, &bolt.Options{Timeout: 5 * time.Second})
		if err != nil {
			return nil, fmt.Errorf("host: opening key-value file of app %q: %w", app, err)
		}
		k.dbs[app] = db
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists([]byte(name))
		return err
	}); err != nil {
		return nil, fmt.Errorf("host: creating key-value store %q of app %q: %w", name, app, err)
	}
	return &boltStore{db: db, bucket: []byte(name)}, nil
}

// closeApp closes the app's file after the versions using it drained.
func (k *kvManager) closeApp(app string, bg *sync.WaitGroup) {
	k.mu.Lock()
	db := k.dbs[app]
	delete(k.dbs, app)
	k.mu.Unlock()
	if db == nil {
		return
	}
	// bbolt's Close waits for open transactions; in-flight requests of the
	// deleted app may still be in one. Closing in the background keeps
	// Delete instant.
	bg.Add(1)
	go func() {
		defer bg.Done()
		time.Sleep(100 * time.Millisecond)
		db.Close()
	}()
}

func (k *kvManager) closeAll() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	var err error
	for app, db := range k.dbs {
		err = errors.Join(err, db.Close())
		delete(k.dbs, app)
	}
	return err
}

type boltStore struct {
	db     *bolt.DB
	bucket []byte
}

var errStoreClosed = errors.New("key-value store closed")

func (s *boltStore) Get(key string) (v []byte, found bool, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(s.bucket)
		if b == nil {
			return errStoreClosed
		}
		if got := b.Get([]byte(key)); got != nil {
			v, found = append([]byte(nil), got...), true
		}
		return nil
	})
	return v, found, err
}

func (s *boltStore) Set(key string, val []byte) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(s.bucket)
		if b == nil {
			return errStoreClosed
		}
		return b.Put([]byte(key), val)
	})
}

func (s *boltStore) Delete(key string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(s.bucket)
		if b == nil {
			return errStoreClosed
		}
		return b.Delete([]byte(key))
	})
}

type memStore struct {
	mu sync.RWMutex
	m  map[string][]byte
}

func (s *memStore) Get(key string) ([]byte, bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	v, ok := s.m[key]
	return v, ok, nil
}

func (s *memStore) Set(key string, val []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[key] = val
	return nil
}

func (s *memStore) Delete(key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, key)
	return nil
}

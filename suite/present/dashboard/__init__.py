"""present/dashboard"""
